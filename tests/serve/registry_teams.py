"""Teams made through the SDK, as W&B's registry member tests make them: `api.create_team()`
by a user of several organizations, the team loaded with its members, added to a registry of
the newest organization (by object and by id), given a role, and listed back."""
import wandb
from common import check, done

api = wandb.Api()
reg = api.create_registry("team-reg", "organization", organization="newer")
teams = [api.create_team(f"sdk-team-{i}", admin_username="ana") for i in range(3)]
for t in teams:
    check([m.username for m in t.members] == ["ana"], "members of %s: %r" % (t.name, t.members))
    check(t.members[0].admin, "ana administers %s" % t.name)
again = api.team("sdk-team-0")
check(again.id == teams[0].id, "team id %r != %r" % (again.id, teams[0].id))
reg = reg.add_members(teams[0], teams[1].id).update_member(teams[1], role="viewer")
roles = {m.team.name: m.role for m in reg.team_members()}
ids = {m.team.id for m in reg.team_members()}
check(ids == {teams[0].id, teams[1].id}, "team ids %r" % ids)
done({"roles": roles})

"""Organizations and the W&B Registry as an org admin: viewer, organization, user search,
updateUser, then a registry created, listed, searched, edited, given members, its versions
listed, and deleted. The org, its members and a team come from the artfs CLI."""
import os

import wandb
from common import FAIL, check, done, path

api = wandb.Api()
me = api.viewer
check(me.username == "ana", "viewer %r" % me.username)
check(me.entity == "ana", "default entity %r" % me.entity)
check([t for t in me.teams] == ["vision"] or "vision" in me.teams, "teams %r" % me.teams)
org = api.organization("acme")
check(org.name == "acme" and org.org_entity.name == "acme-org", "org %r" % org)
bo = api.user("bo")
check(bo is not None and bo.username == "bo" and bo.email == "bo@acme.test", "user bo %r" % bo)
check(api.user("nobody-like-this") is None, "no such user")

# The server-side default entity, as W&B's registry tests set it.
api._service_api.execute_graphql(
    "mutation SetDefaultEntity($entity: String!) {"
    " updateUser(input: {defaultEntity: $entity}) { user { id } } }",
    variables={"entity": "vision"},
)
check(wandb.Api().default_entity == "vision", "default entity now %r" % wandb.Api().default_entity)

reg = api.create_registry(
    "models", "organization", organization="acme", description="first", artifact_types=["model"]
)
check(reg.full_name == "wandb-registry-models" and reg.entity == "acme-org", "created %r" % reg.path)
check(list(reg.artifact_types) == ["model"] and not reg.allow_all_artifact_types, "types %r" % reg.artifact_types)
try:
    api.create_registry("models", "organization", organization="acme")
    check(False, "a second registry of the same name was created")
except ValueError:
    pass
api.create_registry("datasets", "restricted", organization="acme")
names = sorted(r.name for r in api.registries(organization="acme"))
check(names == ["datasets", "models"], "registries %r" % names)
check([r.name for r in api.registries(organization="acme", order="-name")] == ["models", "datasets"], "order")
paged = api.registries(organization="acme", per_page=1)
first = next(paged).name
rest = [r.name for r in api.registries(organization="acme", per_page=1, start=paged.cursor)]
check([first] + rest == ["datasets", "models"], "pages %r %r" % (first, rest))
found = [r.name for r in api.registries(organization="acme", filter={"name": {"$regex": "^wandb-registry-mod"}})]
check(found == ["models"], "regex filter %r" % found)

got = api.registry("models", organization="acme")
check(got.description == "first" and got.visibility == "organization", "loaded %r" % got.description)
got.description = "second"
got.artifact_types.append("dataset")
got.visibility = "restricted"
got.save()
again = api.registry("models", organization="acme")
check(again.description == "second", "description %r" % again.description)
check(sorted(again.artifact_types) == ["dataset", "model"], "types %r" % list(again.artifact_types))
check(again.visibility == "restricted", "visibility %r" % again.visibility)

cy = api.user("cy")
again.add_members(cy)
again.update_member(cy, role="admin")
members = {m.user.username: m.role for m in again.user_members()}
check(members == {"ana": "admin", "cy": "admin"}, "user members %r" % members)
made = api.create_team("made-by-sdk")
check(made.name == "made-by-sdk" and [m.username for m in made.members] == ["ana"], "created team %r" % made.members)
dan = api.user("dan")  # in no org or team of ana's: found because ana is a server admin
check(dan is not None and dan.username == "dan", "admin search %r" % dan)
again.add_members(dan, made)
check("dan" in {m.user.username for m in again.user_members()}, "dan added")
again.remove_members(dan.id, made)
team = api.team("vision")
again.add_members(team)
teams = {m.team.name: m.role for m in again.team_members()}
check(teams == {"vision": "member"}, "team members %r" % teams)
again.update_member(team, role="viewer")
check({m.team.name: m.role for m in again.team_members()} == {"vision": "viewer"}, "team role")
again.remove_members(cy)
check(sorted(m.user.username for m in again.user_members()) == ["ana"], "cy removed")

# A version the Rust side put into the registry's project with `artfs log`.
versions = list(again.versions())
check([(v.name, v.type) for v in versions] == [("bike-model:v0", "model")], "versions %r" % versions)
best = list(again.versions(filter={"alias": "best"}))
check(len(best) == 1, "alias filter %r" % best)
check(list(again.versions(filter={"alias": "nope"})) == [], "alias filter excludes")

# Read through the registry path forms, which resolve the org entity from the org or entity.
fresh = wandb.Api()
art = fresh.artifact("acme/wandb-registry-models/bike-model:best")
check(art.version == "v0" and art.type == "model", "by org path %s %s" % (art.version, art.type))
root = art.download(root=path("dl"))
with open(os.path.join(root, "w.bin"), "rb") as f:
    check(f.read() == b"weights", "downloaded bytes")
short = fresh.artifact("wandb-registry-models/bike-model:v0")  # org of the default entity (vision)
check(short.digest == art.digest, "short path %r" % short.digest)

# An empty registry can be renamed; one holding collections cannot.
ds = api.registry("datasets", organization="acme")
ds.name = "data"
ds.save()
check(api.registry("data", organization="acme").visibility == "restricted", "renamed keeps settings")
again.name = "models2"
try:
    again.save()
    check(False, "a registry holding collections was renamed")
except Exception:
    pass
FAIL.records.clear()  # the refused rename was logged

api.registry("data", organization="acme").delete()
names = sorted(r.name for r in api.registries(organization="acme"))
check(names == ["models"], "after delete %r" % names)
try:
    api.registry("data", organization="acme")
    check(False, "a deleted registry still loads")
except ValueError:
    pass
done({"registries": names})

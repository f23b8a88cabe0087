"""What one server says about the caller's organizations, teams and registries."""
import wandb
from common import done

api = wandb.Api()
me = api.viewer
org = api.organization("acme")
done({
    "user": me.username,
    "teams": sorted(me.teams),
    "org_entity": org.org_entity.name,
    "registries": sorted(r.name for r in api.registries(organization="acme")),
})

"""Aliases set on a version fetched through where it is linked, as W&B's tests set them: the
owner aliases a link in a plain portfolio (the source keeps its own aliases); cy, a registry
member outside team `vision`, sees a registry link without its source and still aliases it;
bo, invited into `vision` with `team.invite()`, sees the source and aliases the link too."""
import os

import wandb
from common import FAIL, check, done

ORG = "acme"
ana = wandb.Api()
with wandb.init(entity="vision", project="src") as run:
    art = run.log_artifact(wandb.Artifact("weights", type="model"), aliases=["sequence"])
    run.link_artifact(art, "vision/src/my-portfolio")
    art.wait()
reg = ana.create_registry("models", "organization", organization=ORG)
reg = reg.add_members(ana.user("cy"), ana.user("bo"))
linked = art.link(f"{ORG}/{reg.full_name}/bikes")
name = linked.qualified_name

# The owner: aliases through the portfolio stay on the link.
p = ana.artifact("vision/src/my-portfolio:v0")
check("sequence" not in p.aliases, "portfolio aliases %r" % p.aliases)
p.aliases = ["portfolio"]
p.aliases.append("boom")
p.save()
p = ana.artifact("vision/src/my-portfolio:v0")
src = ana.artifact("vision/src/weights:v0")
result = {"portfolio": sorted(p.aliases), "source": sorted(src.aliases)}


def alias_as(key, alias):
    api = wandb.Api(api_key=os.environ[key])
    a = api.artifact(name)
    seen = (a.source_entity, a.source_project)
    a.aliases.append(alias)
    a.save()
    # Without the source, the SDK warns that it skips the source's fields; that is expected.
    FAIL.records = [r for r in FAIL.records if "insufficient permissions" not in r]
    return seen, sorted(api.artifact(name).aliases)


result["cy_sees"], result["cy_aliases"] = alias_as("FLOW_KEY_CY", "cy-alias")
check(ana.team("vision").invite("bo"), "invite bo into vision")
check("bo" in [m.username for m in ana.team("vision").members], "bo is in vision")
result["bo_sees"], result["bo_aliases"] = alias_as("FLOW_KEY_BO", "bo-alias")
result["source_after"] = sorted(ana.artifact("vision/src/weights:v0").aliases)
done(result)

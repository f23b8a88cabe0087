"""Driver for the W&B-source tests: FLOW_OP=log logs the folder FLOW_DIR as FLOW_ARTIFACT (with
the aliases in FLOW_ALIASES, comma-separated); FLOW_OP=alias moves FLOW_ALIAS to FLOW_ARTIFACT
(name:vN) through the public API, as a user would."""
import os
import wandb
from common import ENTITY, PROJECT, done

op = os.environ["FLOW_OP"]
if op == "log":
    aliases = [a for a in os.environ.get("FLOW_ALIASES", "").split(",") if a]
    with wandb.init(entity=ENTITY, project=PROJECT, job_type="writer") as run:
        art = wandb.Artifact(os.environ["FLOW_ARTIFACT"], type="dataset")
        art.add_dir(os.environ["FLOW_DIR"])
        run.log_artifact(art, aliases=aliases)
        art.wait()
    done({"version": art.version, "digest": art.digest})
elif op == "alias":
    api = wandb.Api()
    art = api.artifact(f"{ENTITY}/{PROJECT}/{os.environ['FLOW_ARTIFACT']}")
    art.aliases.append(os.environ["FLOW_ALIAS"])
    art.save()
    done({"version": art.version})

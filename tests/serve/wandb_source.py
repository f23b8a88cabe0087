"""Driver for the W&B-source tests: FLOW_OP=log logs the folder FLOW_DIR as FLOW_ARTIFACT (with
the aliases in FLOW_ALIASES, comma-separated); FLOW_OP=alias moves FLOW_ALIAS to FLOW_ARTIFACT
(name:vN) through the public API, as a user would; FLOW_OP=download downloads FLOW_ARTIFACT
(name:vN) to FLOW_ROOT through the SDK's cache (WANDB_CACHE_DIR) and reports each file's MD5."""
import os
import wandb
from common import ENTITY, PROJECT, done, tree

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
elif op == "download":
    api = wandb.Api()
    art = api.artifact(f"{ENTITY}/{PROJECT}/{os.environ['FLOW_ARTIFACT']}")
    root = art.download(root=os.environ["FLOW_ROOT"])
    done({"version": art.version, "files": tree(root)})

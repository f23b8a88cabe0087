"""Driver for the W&B-source tests: FLOW_OP=log logs the folder FLOW_DIR as FLOW_ARTIFACT (with
the aliases in FLOW_ALIASES, comma-separated); FLOW_OP=alias moves FLOW_ALIAS to FLOW_ARTIFACT
(name:vN) through the public API, as a user would; FLOW_OP=download downloads FLOW_ARTIFACT
(name:vN) to FLOW_ROOT through the SDK's cache (WANDB_CACHE_DIR) and reports each file's MD5;
FLOW_OP=ref logs FLOW_ARTIFACT holding the entries FLOW_PATHS (comma-separated) of FLOW_TARGET
(name:vN) as `ref/<path>`, the SDK's wandb-artifact:// references, plus FLOW_DIR if set, and
reports each entry's ref; FLOW_OP=delete deletes FLOW_ARTIFACT (name:vN) and its aliases."""
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
elif op == "ref":
    with wandb.init(entity=ENTITY, project=PROJECT, job_type="referrer") as run:
        used = run.use_artifact(os.environ["FLOW_TARGET"])
        art = wandb.Artifact(os.environ["FLOW_ARTIFACT"], type="dataset")
        for name in os.environ["FLOW_PATHS"].split(","):
            art.add_reference(used.get_entry(name), name="ref/" + name)
        if os.environ.get("FLOW_DIR"):
            art.add_dir(os.environ["FLOW_DIR"])
        run.log_artifact(art)
        art.wait()
    refs = {p: e.ref for p, e in art.manifest.entries.items()}
    done({"version": art.version, "refs": refs})
elif op == "delete":
    api = wandb.Api()
    art = api.artifact(f"{ENTITY}/{PROJECT}/{os.environ['FLOW_ARTIFACT']}")
    art.delete(delete_aliases=True)
    done({})

"""Logs FLOW_ARTIFACT (one file seeded by FLOW_SEED) and links it into FLOW_PORTFOLIO with the
alias FLOW_ALIAS; used to link through two servers over one registry."""
import os
import random
import wandb
from common import ENTITY, PROJECT, check, done, path, write

rng = random.Random(int(os.environ["FLOW_SEED"]))
p = write("data/blob.bin", rng.randbytes(3000))
with wandb.init(entity=ENTITY, project=PROJECT, job_type="linker") as run:
    art = wandb.Artifact(os.environ["FLOW_ARTIFACT"], type="dataset")
    art.add_file(p)
    link = run.link_artifact(art, os.environ["FLOW_PORTFOLIO"], aliases=[os.environ["FLOW_ALIAS"]])
    check(link.is_link, "not a link: %s" % link.qualified_name)
done({"version": link.version, "digest": art.digest, "data": path("data")})

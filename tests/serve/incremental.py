"""An incremental artifact (`wandb.Artifact(..., incremental=True)`): the SDK uploads an
INCREMENTAL manifest of the new and changed files only; the new version is the previous one
with those laid over it."""
import wandb
from common import ENTITY, PROJECT, FAIL, check, done, path, tree, write

write("inc/a.txt", b"kept\n")
write("inc/b.txt", b"old b\n")
with wandb.init(entity=ENTITY, project=PROJECT, job_type="base") as run:
    art = wandb.Artifact("inc", type="dataset")
    art.add_dir(path("inc"))
    run.log_artifact(art)
    art.wait()
    check(art.version == "v0", "base is %s" % art.version)

write("more/b.txt", b"new b\n")
write("more/c/c.txt", b"added\n")
with wandb.init(entity=ENTITY, project=PROJECT, job_type="extend") as run:
    art = wandb.Artifact("inc", type="dataset", incremental=True)
    art.add_dir(path("more"))
    run.log_artifact(art)
    art.wait()
    check(art.version == "v1", "the incremental version is %s" % art.version)
# The SDK warns that `incremental` is experimental: that warning is expected, nothing else.
FAIL.records = [r for r in FAIL.records if "incremental" not in r]

got = wandb.Api().artifact("%s/%s/inc:latest" % (ENTITY, PROJECT))
check(got.version == "v1", "latest is %s" % got.version)
names = sorted(f.name for f in got.files())
check(names == ["a.txt", "b.txt", "c/c.txt"], "files %r" % names)
dl = got.download(root=path("dl"))
want = {"a.txt": tree(path("inc"))["a.txt"], "b.txt": tree(path("more"))["b.txt"],
        "c/c.txt": tree(path("more"))["c/c.txt"]}
check(tree(dl) == want, "downloaded %r != %r" % (tree(dl), want))
done({"digest": got.digest})

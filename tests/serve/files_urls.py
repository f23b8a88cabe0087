"""artifact.files(): len(), list(), names=; every file's url/directUrl/storagePath, and
file.download() reading the bytes back; commit_hash set on a logged version."""
import os

import wandb
from common import ENTITY, PROJECT, check, done, path, write

CONTENT = {"a.txt": b"alpha\n", "sub/b.txt": b"bravo\n" * 100, "sub/c.bin": bytes(range(256))}
for rel, data in CONTENT.items():
    write("d/" + rel, data)
with wandb.init(entity=ENTITY, project=PROJECT) as run:
    art = wandb.Artifact("files", type="dataset")
    art.add_dir(path("d"))
    run.log_artifact(art)

api = wandb.Api()
a = api.artifact("%s/%s/files:v0" % (ENTITY, PROJECT))
files = a.files()
check(len(files) == 3, "len(files()) = %d" % len(files))
check(repr(files).endswith("(3)>"), "repr %r" % repr(files))
names = sorted(f.name for f in files)
check(names == sorted(CONTENT), "names %r" % names)
one = a.files(names=["sub/b.txt"])
check(len(one) == 1 and [f.name for f in one] == ["sub/b.txt"], "names= gives %r" % list(one))
paged = a.files(per_page=2)
check(len(list(paged)) == 3, "paging over 2 per page gives every file")

got = {}
for f in files:
    check(f.storage_path.startswith("wandb_artifacts/"), "storagePath %r" % f.storage_path)
    check("wandb_artifacts/" in f.direct_url, "directUrl %r" % f.direct_url)
    check(f.url, "url of %s" % f.name)
    root = path("dl")
    f.download(root=root, replace=True)
    with open(os.path.join(root, f.name), "rb") as fh:
        got[f.name] = fh.read()
check(got == CONTENT, "downloaded bytes differ: %r" % sorted(got))

check(isinstance(a.commit_hash, str) and len(a.commit_hash) >= 12, "commit_hash %r" % a.commit_hash)
# The whole artifact, through the manifest URL the server hands out.
out = a.download(root=path("whole"), skip_cache=True)
check(sorted(os.path.relpath(os.path.join(d, x), out) for d, _, fs in os.walk(out) for x in fs) == sorted(CONTENT), "download")
done({"commit_hash": a.commit_hash})

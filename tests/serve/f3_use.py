"""F3 + F6: a second run uses an artifact by name and alias and downloads it (whole, one path,
one entry through /artifactsV2); the public API reads it outside a run."""
import os
import wandb
from common import ENTITY, PROJECT, check, done, path, tree, write

files = {"a.txt": b"alpha\n", "d/b.bin": os.urandom(70000), "d/e/c.txt": b"gamma\n", "empty": b""}
for rel, data in files.items():
    write("src/" + rel, data)
write("refs/r.txt", b"a referenced file\n")

with wandb.init(entity=ENTITY, project=PROJECT, job_type="make") as run:
    art = wandb.Artifact("flowers", type="dataset", metadata={"rows": 3})
    art.add_dir(path("src"))
    art.add_reference("file://" + path("refs/r.txt"))
    run.log_artifact(art, aliases=["prod"])
    art.wait()
    logged_digest = art.digest
    maker = run.id

with wandb.init(entity=ENTITY, project=PROJECT, job_type="train") as run:
    user = run.id
    used = run.use_artifact("flowers:prod")
    check(used.version == "v0", "resolved %s" % used.version)
    check(used.digest == logged_digest, "digest %s != %s" % (used.digest, logged_digest))
    root = used.download(root=path("dl"))
    got = tree(root)
    want = tree(path("src"))
    want["r.txt"] = tree(path("refs"))["r.txt"]
    check(got == want, "downloaded tree %r != %r" % (got, want))
    one = used.get_path("d/e/c.txt").download(root=path("one"))
    check(open(one, "rb").read() == files["d/e/c.txt"], "get_path bytes")
    used2 = run.use_artifact("%s/%s/flowers:latest" % (ENTITY, PROJECT))
    # A fresh object: the entry's bytes come through /artifactsV2 with Basic auth.
    entry = used2.get_entry("d/b.bin")
    p = entry.download(root=path("entry"))
    check(open(p, "rb").read() == files["d/b.bin"], "get_entry bytes")

api = wandb.Api()
a = api.artifact("%s/%s/flowers:v0" % (ENTITY, PROJECT))
check(a.digest == logged_digest and a.type == "dataset", "api artifact")
check(sorted(a.aliases) == ["latest", "prod"], "api aliases %r" % a.aliases)
check(a.metadata == {"rows": 3}, "metadata %r" % a.metadata)
check(sorted(f.name for f in a.files()) == sorted(list(files) + ["r.txt"]), "files()")
root = a.download(root=path("api-dl"))
check(tree(root) == tree(path("dl")), "api download")
versions = list(api.artifacts("dataset", "%s/%s/flowers" % (ENTITY, PROJECT)))
check([v.version for v in versions] == ["v0"], "versions %r" % [v.version for v in versions])
types = [t.name for t in api.artifact_types(project="%s/%s" % (ENTITY, PROJECT))]
check(types == ["dataset"], "types %r" % types)
colls = [c.name for c in api.artifact_collections("%s/%s" % (ENTITY, PROJECT), "dataset")]
check("flowers" in colls, "collections %r" % colls)
check(api.artifact_exists("%s/%s/flowers:v0" % (ENTITY, PROJECT)), "exists v0")
# Lineage: the run that logged it, and the run that used it.
check(a.logged_by().id == maker, "logged_by %r != %r" % (a.logged_by().id, maker))
check([r.id for r in a.used_by()] == [user], "used_by %r" % [r.id for r in a.used_by()])
check(not api.artifact_exists("%s/%s/flowers:v9" % (ENTITY, PROJECT)), "not exists v9")
done({"digest": logged_digest})

"""F1 + F2: a run logs an artifact (files, a dir, new_file, references), re-logs it unchanged."""
import wandb
from common import ENTITY, PROJECT, check, done, path, write

write("src/hello.txt", b"hello world\n")
write("src/sub/empty.txt", b"")
for i in range(3):
    write("src/dir/f%d.csv" % i, b"a,b\n%d,%d\n" % (i, i * i))

run = wandb.init(entity=ENTITY, project=PROJECT, job_type="train", group="g1",
                 config={"lr": 0.1, "epochs": 3})
run.log({"loss": 0.5})
art = wandb.Artifact("bikes", type="dataset", description="F2 test", metadata={"k": 1})
art.add_file(path("src/hello.txt"))
art.add_file(path("src/sub/empty.txt"), name="sub/empty.txt")
art.add_dir(path("src/dir"), name="dir")
with art.new_file("notes/new.txt") as f:
    f.write("a new file\n")
write("refs/ref-a.txt", b"referenced with checksum\n")
write("refs/ref-b.txt", b"referenced by URI only\n")
art.add_reference("file://" + path("refs/ref-a.txt"))
art.add_reference("file://" + path("refs/ref-b.txt"), checksum=False)
run.log_artifact(art, aliases=["latest", "best"])
art.wait()
check(art.version == "v0", "first version is v0, got %s" % art.version)
check(sorted(art.aliases) == ["best", "latest"], "aliases %r" % art.aliases)
digest = art.digest

# The same content again: no new version.
again = wandb.Artifact("bikes", type="dataset")
again.add_file(path("src/hello.txt"))
again.add_file(path("src/sub/empty.txt"), name="sub/empty.txt")
again.add_dir(path("src/dir"), name="dir")
with again.new_file("notes/new.txt") as f:
    f.write("a new file\n")
again.add_reference("file://" + path("refs/ref-a.txt"))
again.add_reference("file://" + path("refs/ref-b.txt"), checksum=False)
run.log_artifact(again, aliases=["again"])
again.wait()
check(again.version == "v0", "re-log made a new version: %s" % again.version)

# Changed content: v1, sharing the unchanged files.
write("src/hello.txt", b"hello again\n")
v1 = wandb.Artifact("bikes", type="dataset")
v1.add_file(path("src/hello.txt"))
v1.add_dir(path("src/dir"), name="dir")
run.log_artifact(v1)
v1.wait()
check(v1.version == "v1", "changed content is v1, got %s" % v1.version)
run.finish()
done({"digest": digest, "run": run.id, "v1_digest": v1.digest})

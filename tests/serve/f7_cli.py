"""F7: the wandb CLI — `wandb artifact put`, `get`, `ls`."""
import os
import subprocess
import sys
from common import ENTITY, PROJECT, check, done, path, tree, write


def wandb_cli(*args):
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}
    r = subprocess.run([sys.executable, "-m", "wandb", *args], capture_output=True, text=True,
                       timeout=300, env=env)
    check(r.returncode == 0, "wandb %s failed: %s %s" % (" ".join(args), r.stdout, r.stderr))
    bad = [l for l in (r.stdout + r.stderr).splitlines()
           if ("error" in l.lower() or "warning" in l.lower()) and "is deprecated" not in l]
    check(not bad, "wandb %s printed: %r" % (" ".join(args), bad))
    return r.stdout + r.stderr


write("cli/x.txt", b"x" * 100)
write("cli/y/z.txt", b"zzz")
name = "%s/%s/cli-data" % (ENTITY, PROJECT)
out = wandb_cli("artifact", "put", "--name", name, "--type", "dataset", "--alias", "cli-alias",
                "--description", "from the CLI", path("cli"))
check("cli-data:v0" in out, "put output: %r" % out)
wandb_cli("artifact", "get", "--root", path("got"), name + ":cli-alias")
check(tree(path("got")) == tree(path("cli")), "get tree")
ls = wandb_cli("artifact", "ls", "%s/%s" % (ENTITY, PROJECT))
check("cli-data:v0" in ls and "dataset" in ls, "ls output: %r" % ls)
done()

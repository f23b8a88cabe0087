"""F2m: a file of 2 GiB and more goes up in parts (multipart) and comes back in ranged parts."""
import hashlib
import wandb
from common import ENTITY, PROJECT, check, done, path

size = (2 << 30) + (5 << 20)
block = hashlib.sha256(b"seed").digest() * (1 << 15)  # 1 MiB
md5 = hashlib.md5()
p = path("big.bin")
with open(p, "wb") as f:
    written = 0
    i = 0
    while written < size:
        chunk = (block[i % 7:] + block[:i % 7])[: size - written]
        f.write(chunk)
        md5.update(chunk)
        written += len(chunk)
        i += 1
want = md5.hexdigest()
with wandb.init(entity=ENTITY, project=PROJECT, job_type="big") as run:
    art = wandb.Artifact("big", type="model")
    art.add_file(p)
    run.log_artifact(art)
    art.wait()
a = wandb.Api().artifact("%s/%s/big:latest" % (ENTITY, PROJECT))
root = a.download(root=path("dl"))
got = hashlib.md5()
with open(path("dl", "big.bin"), "rb") as f:
    while b := f.read(1 << 20):
        got.update(b)
check(got.hexdigest() == want, "downloaded bytes differ")
done({"md5": want})

"""Logs what the web UI test browses: run R (train) logs `model` (folders, text, Markdown,
JSON, CSV, TSV, a PNG, SVG and HTML, and names, a description, metadata and contents that try
to inject markup), then run S (eval) uses it and logs v1 with one file changed, one removed
and one added; run C (compare) uses both. Prints the URLs the SDK itself shows for the runs, the project and the artifact."""
import base64
import os
import wandb
from common import ENTITY, PROJECT, done, path, write

EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)">'
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
files = {
    "README.md": b"# Bikes\n\nA model of *bikes*.\n",
    "data/table.csv": b'city,count\nParis,"1,200"\nLyon,300\n',
    "data/table.tsv": b"city\tcount\nNantes\t40\n",
    "data/config.json": b'{"layers":[64,32],"name":"net"}',
    "img/pic.png": PNG,
    "img/logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(3)"><script>alert(4)</script></svg>',
    "page.html": ("<html><body>" + EVIL + "</body></html>").encode(),
    "notes/" + EVIL.replace("/", "_") + ".txt": EVIL.encode(),
    "deep/a/b/c.txt": b"deep\n",
    "long/" + "n" * 150 + ".txt": b"long\n",
}
root = path("model")
for rel, data in files.items():
    write(os.path.join("model", rel), data)

with wandb.init(entity=ENTITY, project=PROJECT, job_type="train", name="bikes-train",
                config={"lr": 0.25, "epochs": 3}) as run:
    art = wandb.Artifact("model", type="model", description="evil " + EVIL,
                         metadata={"accuracy": 0.91, "evil": EVIL, EVIL: "key"})
    art.add_dir(root)
    run.log_artifact(art, aliases=["best"])
    art.wait()
    run.summary["acc"] = 0.91
    urls = {"run_url": run.url, "project_url": run.project_url, "artifact_url": art.url,
            "run_id": run.id, "digest": art.digest}

write("model/data/table.csv", b"city,count\nParis,1300\n")
os.remove(path("model", "README.md"))
write("model/extra/new.txt", b"new\n")
with wandb.init(entity=ENTITY, project=PROJECT, job_type="eval", name="bikes-eval") as run:
    run.use_artifact("model:v0")
    art = wandb.Artifact("model", type="model", metadata={"accuracy": 0.95, "evil": EVIL})
    art.add_dir(root)
    run.log_artifact(art)
    art.wait()
    urls["eval_id"] = run.id
# A run that uses both: drawn from v0, it sits one step from v0 but right of v1.
with wandb.init(entity=ENTITY, project=PROJECT, job_type="compare", name="bikes-compare") as run:
    run.use_artifact("model:v0")
    run.use_artifact("model:v1")
done(urls)

"""Logs `notes` with a hostile README.md (script tags, `javascript:` links, raw `<img onerror>`,
an HTML block) and a hostile Markdown description, for the web UI to render inert."""
import wandb
from common import ENTITY, PROJECT, done, write

HOSTILE = """# Release *notes*

Plain **bold** text and a [safe link](https://example.org/docs).

<script>alert(1)</script>

An image <img src=x onerror="alert(2)"> inline, a [bad link](javascript:alert(3)),
a [mixed-case one](JaVaScRiPt:alert(4)), an autolink <javascript:alert(5)> and
![an image](javascript:alert(6)).

<div onclick="alert(7)">
an HTML block
</div>
"""
p = write("notes/README.md", HOSTILE.encode())
with wandb.init(entity=ENTITY, project=PROJECT, job_type="write") as run:
    art = wandb.Artifact("notes", type="docs",
                         description="*Described* <script>alert(8)</script> [x](javascript:alert(9))")
    art.add_file(p)
    run.log_artifact(art)
    art.wait()
done({"version": art.version})

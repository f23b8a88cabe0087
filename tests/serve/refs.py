"""Reference entries through the SDK: s3:// (ministack, through boto3), http:// (nginx), gs://
(fake-gcs, through google-cloud-storage) and file://, each with and without checksum; then a
second run downloads the logged version, whose bytes must be the targets' bytes.

FLOW_S3 / FLOW_HTTP / FLOW_GS / FLOW_FILE are the bases the Rust test put the targets under:
`one.txt` and `nock.txt` below each, and `dir/{a,b}.txt` below FLOW_S3. FLOW_EXPECT_DIR holds
the tree a download must produce.

A reference logged without checksum has a digest that is not the target's (the URI, or the MD5
of a file's path) and the SDK's own download compares it with the target's ETag or MD5: SDK
0.31 cannot download any of them, whatever the W&B server. Those go into a second artifact,
`refs-nock`, which artfs reads (the Rust test checks) and whose entries the SDK refuses here."""
import os
import wandb
from common import ENTITY, PROJECT, check, done, path, tree

BASES = {k: os.environ["FLOW_" + k.upper()] for k in ("s3", "http", "gs", "file")}

with wandb.init(entity=ENTITY, project=PROJECT, job_type="refs") as run:
    art = wandb.Artifact("refs", type="dataset")
    nock = wandb.Artifact("refs-nock", type="dataset")
    for scheme, base in BASES.items():
        # One object: etag (+ versionID on S3/GCS), or the file's MD5.
        art.add_reference(base + "/one.txt", name=scheme + "/one.txt")
        nock.add_reference(base + "/nock.txt", name=scheme + "/nock.txt", checksum=False)
    # A prefix: every object below it.
    art.add_reference(BASES["s3"] + "/dir", name="s3/dir")
    run.log_artifact(art)
    run.log_artifact(nock)
    art.wait()
    nock.wait()
    digest = art.digest
    names = sorted(art.manifest.entries)

with wandb.init(entity=ENTITY, project=PROJECT, job_type="consume") as run:
    used = run.use_artifact("refs:latest")
    check(used.digest == digest, "digest %s != %s" % (used.digest, digest))
    check(sorted(f.name for f in used.files()) == names, "files() lists every reference")
    root = used.download(root=path("dl"))
    got, want = tree(root), tree(os.environ["FLOW_EXPECT_DIR"])
    check(got == want, "downloaded tree %r != %r" % (got, want))
    unchecked = run.use_artifact("refs-nock:latest")
    listed = [f for f in unchecked.files()]
    check(len(listed) == len(BASES), "refs-nock lists its references")
    for f in listed:
        try:
            unchecked.get_entry(f.name).download(root=path("dl-nock"))
            check(False, "the SDK downloaded %s (logged without checksum)" % f.name)
        except (ValueError, FileNotFoundError):
            pass
done({"digest": digest, "version": used.version, "names": names})

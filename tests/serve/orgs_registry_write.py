"""Logging into a registry's project: FLOW_EXPECT `write` (a registry member logs an allowed
type; another type is refused) or `refused` (the caller may not write there)."""
import os

import wandb
from common import FAIL, TMP, check, done, write

expect = os.environ["FLOW_EXPECT"]
write("m/w.bin", b"\x02" * 100 + expect.encode())


def log(ty):
    try:
        with wandb.init(entity="acme-org", project="wandb-registry-models", job_type="t") as run:
            a = wandb.Artifact("direct-" + ty, type=ty)
            a.add_dir(os.path.join(TMP, "m"))
            run.log_artifact(a).wait()
        return True
    except Exception:
        return False


if expect == "write":
    check(log("model"), "a registry member could not log an allowed type")
    check(not log("code"), "a type the registry does not allow was logged")
else:
    check(not log("model"), "a non-member logged into the registry")
FAIL.records.clear()  # the refused logs were logged
done({})

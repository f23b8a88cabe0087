"""`api.runs(path, filters=…, order=…, per_page=…)` with the filter language users write, read
back against four runs that differ in config, summary, job type, group and tags."""
import time

import wandb

from common import ENTITY, PROJECT, check, done

specs = [
    ("a", {"lr": 0.1, "opt": "sgd"}, {"acc": 0.5}, "train", "g1", ["base"]),
    ("b", {"lr": 0.01, "opt": "adam"}, {"acc": 0.9}, "train", "g1", ["base", "best"]),
    ("c", {"lr": 0.001, "opt": "adam"}, {"acc": 0.7}, "eval", "g2", []),
    ("d", {"lr": 0.1, "opt": "sgd"}, {}, "eval", "g2", ["wip"]),
]
ids = {}
for name, config, summary, job, group, tags in specs:
    run = wandb.init(entity=ENTITY, project=PROJECT, name="run-" + name, config=config,
                     job_type=job, group=group, tags=tags)
    for k, v in summary.items():
        run.log({k: v})
    ids[name] = run.id
    run.finish()
    time.sleep(1.1)  # distinct creation seconds, so order by creation is the order above

api = wandb.Api()
path = f"{ENTITY}/{PROJECT}"
by_id = {v: k for k, v in ids.items()}


def names(filters=None, order="+created_at", per_page=50):
    runs = api.runs(path, filters=filters or {}, order=order, per_page=per_page)
    got = [by_id[r.id] for r in runs]
    check(len(runs) == len(got), "runCount %d vs %d listed for %r" % (len(runs), len(got), filters))
    return got


cases = [
    ({}, "abcd"),
    ({"config.lr": 0.1}, "ad"),
    ({"config.lr.value": {"$lt": 0.05}}, "bc"),
    ({"config.opt": {"$in": ["adam"]}}, "bc"),
    ({"config.opt": {"$nin": ["adam"]}}, "ad"),
    ({"summary_metrics.acc": {"$gte": 0.7}}, "bc"),
    ({"summary_metrics.acc": {"$gt": 0.5, "$lte": 0.7}}, "c"),
    ({"summary_metrics.acc": {"$exists": False}}, "d"),
    ({"jobType": "eval"}, "cd"),
    ({"group": {"$ne": "g1"}}, "cd"),
    ({"state": "finished"}, "abcd"),
    ({"tags": "best"}, "b"),
    ({"tags": {"$in": ["wip", "best"]}}, "bd"),
    ({"display_name": {"$regex": "^run-[ab]$"}}, "ab"),
    ({"$or": [{"jobType": "train", "config.opt": "sgd"}, {"tags": "wip"}]}, "ad"),
    ({"$and": [{"group": "g2"}, {"summary_metrics.acc": {"$lt": 1}}]}, "c"),
    ({"createdAt": {"$gt": "2000-01-01T00:00:00"}}, "abcd"),
]
for filters, want in cases:
    got = "".join(names(filters))
    check(got == want, "filters %r gave %r, want %r" % (filters, got, want))

check("".join(names(order="-created_at")) == "dcba", "newest first")
check("".join(names(order="-summary_metrics.acc")) == "bcad", "by acc, descending")
check("".join(names(order="+summary_metrics.acc")) == "acbd", "by acc, ascending")
check("".join(names(order="config.lr.value", per_page=1)) == "cbad", "by lr, a page of 1")
check("".join(names({"jobType": {"$in": ["train", "eval"]}}, per_page=3)) == "abcd", "pages of 3")

top = api.runs(path, filters={"summary_metrics.acc": {"$exists": True}}, order="-summary_metrics.acc")[0]
check(by_id[top.id] == "b", "the best run is b")
check(top.summary["acc"] == 0.9 and top.config["lr"] == 0.01, "a listed run's summary and config")
check(top.job_type == "train" and top.group == "g1" and top.tags == ["base", "best"], "fields")

try:
    names({"config.lr": {"$between": [1, 2]}})
    check(False, "an unknown operator was accepted")
except Exception as e:  # the SDK wraps the server's error in its own
    check("unknown operator" in str(e) and "$between" in str(e), "bad filter error: %s" % e)

done({"ids": ids})

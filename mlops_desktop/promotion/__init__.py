"""The promotion pipeline: policies, checks with evidence, the review queue, labels and approvals.

    policy = policy.find_policy(project_root, "churn")            # [promotion.churn] of mlops.toml
    req = pipeline.start(ws, "churn/4", policy); pipeline.run(ws, req.id, progress=...)   # resumable
    reviews.queue(ws); reviews.page(ws, id)                       # the evidence in one place
    labels.label(ws, id, sample, "candidate"); labels.export(ws, "churn")   # -> lake dataset labels_churn
    reviews.decide(ws, id, "approve" | "reject", comment)         # approval moves the alias and redeploys
"""

"""PyTorch references for the contrastive losses (imported by make_reference.py).

Every loss here is written the plain way: the full score matrix, masks, log_softmax.
The engine's fused kernels must reproduce these numbers without ever holding it.
Case layout as in make_reference.py; extra datasets: out/loss, out/accuracy_per_k
(InfoNCE) or out/accuracy (NT-Xent), in/labels, in/excluded (pairs, (n, 2)).
"""
import json
import itertools

import numpy as np
import torch
import torch.nn.functional as F


def info_nce_candidates(B, T, K, t_mode, t_random, negatives, exclude_own):
    """The selected steps and the (R, R) mask of allowed candidates, rows and columns (t, b)."""
    ts = {"last": [T - K - 1], "random": [t_random], "all": list(range(T - K))}[t_mode]
    R = len(ts) * B
    t_of = torch.arange(R) // B
    b_of = torch.arange(R) % B
    valid = torch.ones(R, R, dtype=torch.bool)
    if negatives == "batch":
        valid &= t_of[:, None] == t_of[None, :]
    if negatives == "sequence":  # the other selected steps of the same sequence only
        valid &= b_of[:, None] == b_of[None, :]
    if exclude_own:
        valid &= ~((b_of[:, None] == b_of[None, :]) & ~torch.eye(R, dtype=torch.bool))
    return ts, R, valid


def info_nce(c, z, weights, biases, t_mode, t_random, normalize, negatives, exclude_own, score, temperature):
    """Returns (loss, row accuracy per k, column accuracy per k)."""
    B, T, _ = c.shape
    K = len(weights)
    Dz = z.shape[2]
    ts, R, valid = info_nce_candidates(B, T, K, t_mode, t_random, negatives, exclude_own)
    scale = {"dot": 1.0, "scaled_dot": 1.0 / Dz, "cosine": 1.0 / temperature}[score]
    losses, row_acc, col_acc = [], [], []
    for k in range(1, K + 1):
        pred = torch.cat([c[:, t] @ weights[k - 1].T + biases[k - 1] for t in ts])  # rows (t, b)
        targ = torch.cat([z[:, t + k] for t in ts])
        if score == "cosine":
            pred, targ = F.normalize(pred, dim=1, eps=1e-8), F.normalize(targ, dim=1, eps=1e-8)
        a, cand = (pred, targ) if normalize == "over_latents" else (targ, pred)
        s = (a @ cand.T * scale).masked_fill(~valid, float("-inf"))
        losses.append(-torch.log_softmax(s, dim=1).diagonal().mean())
        row_acc.append((s.argmax(dim=1) == torch.arange(R)).double().mean().item())
        # seed 004: argmax over dim 0 of the row-softmaxed matrix
        col_acc.append((torch.log_softmax(s, dim=1).argmax(dim=0) == torch.arange(R)).double().mean().item())
    return torch.stack(losses).mean(), row_acc, col_acc


def seed000_vectorised(latent, context, W):
    """Seed 000's vectorised info_NCE body, as printed (W: list of (Dc, Dz) matrices)."""
    batch, timesteps, _ = latent.shape
    k = len(W)
    current = timesteps - k - 1
    last_context = context[:, current, :]
    loss, accuracy = 0.0, 0.0
    for t in range(k):
        latent_vector = latent[:, current + t + 1, :]
        pred = last_context @ W[t]
        sim = pred @ latent_vector.T
        softmax = torch.log_softmax(sim, dim=1)
        loss = loss + torch.diag(softmax).sum()
        accuracy += (softmax.argmax(dim=1) == torch.arange(batch)).sum()
    return loss / (-k * batch), accuracy / (k * batch)


def seed000_loop(latent, context, W):
    """Seed 000's per-sample loop. As printed it accumulates log(p/denominator) inside
    the inner j loop (a running denominator); its evident intent, implemented here, is
    one log-ratio per (i, k) with the full denominator, averaged over i and k."""
    batch, timesteps, _ = latent.shape
    k = len(W)
    current = timesteps - k - 1
    last_context = context[:, current, :]
    loss = 0.0
    for i in range(batch):
        loss_i = 0.0
        for step in range(k):
            pred_i = last_context[i] @ W[step]
            num = torch.exp(pred_i @ latent[i, current + step + 1, :])
            den = sum(torch.exp(pred_i @ latent[j, current + step + 1, :]) for j in range(batch))
            loss_i = loss_i + torch.log(num / den)
        loss = loss + loss_i / -k
    return loss / batch


def seed004_nce(z, c, Wk, t_samples):
    """Seed 004's loss and accuracy from z (B, T, 512) and the GRU output c (B, T, Dc)."""
    batch = z.shape[0]
    timestep = len(Wk)
    encode_samples = torch.stack([z[:, t_samples + i, :] for i in range(1, timestep + 1)])
    c_t = c[:, t_samples, :]
    pred = torch.stack([Wk[i](c_t) for i in range(timestep)])
    nce, correct = 0.0, None
    for i in range(timestep):
        total = torch.mm(encode_samples[i], pred[i].T)
        correct = torch.sum(torch.eq(torch.argmax(torch.softmax(total, dim=1), dim=0), torch.arange(0, batch)))
        nce = nce + torch.sum(torch.diag(torch.log_softmax(total, dim=1)))
    nce = nce / (-1.0 * batch * timestep)
    return nce, 1.0 * correct.item() / batch


def nt_xent(e, labels, excluded, similarity, temperature, form):
    n = e.shape[0]
    if similarity == "cosine":
        x = F.normalize(e, dim=1, eps=1e-8)
        s = x @ x.T
    elif similarity == "dot":
        s = e @ e.T
    else:
        s = -torch.sqrt(((e[:, None, :] - e[None, :, :]) ** 2).sum(-1) + 1e-12)
    s = s / temperature
    valid = ~torch.eye(n, dtype=torch.bool)
    for i, j in excluded:
        valid[i, j] = False
    pos = (labels[:, None] == labels[None, :]) & valid
    used = pos.sum(1) > 0
    lse_all = torch.logsumexp(s.masked_fill(~valid, float("-inf")), dim=1)
    if form == "supcon":
        pos_term = (s * pos).sum(1) / pos.sum(1).clamp(min=1)
    else:
        pos_term = torch.logsumexp(s.masked_fill(~pos, float("-inf")), dim=1)
    loss = (lse_all - pos_term)[used].mean()
    best = s.masked_fill(~valid, float("-inf")).argmax(dim=1)
    acc = pos[torch.arange(n), best][used].double().mean().item()
    return loss, acc, int(used.sum()), int((~used).sum())


def write_info_nce_cases(w):
    B, T, Dc, Dz, K = 5, 9, 6, 4, 3
    c = w.randn(B, T, Dc)
    z = w.randn(B, T, Dz)
    weights = [w.randn(Dz, Dc, scale=0.5) for _ in range(K)]
    biases = [w.randn(Dz, scale=0.1) for _ in range(K)]
    grid = itertools.product(["last", "random", "all"], ["over_latents", "over_predictions"],
                             [("batch", False), ("batch_time", False), ("batch_time", True), ("sequence", False)],
                             ["dot", "scaled_dot", "cosine"])
    for t_mode, normalize, (negatives, exclude), score in grid:
        if negatives == "sequence" and t_mode != "all":  # one step: no negative (an error in the engine)
            continue
        name = f"infonce_{t_mode}_{normalize}_{negatives}{'_exclown' if exclude else ''}_{score}"
        cfg = {"t_mode": t_mode, "normalize": normalize, "negatives": negatives, "exclude_own_sequence": exclude,
               "score": score, "temperature": 0.5, "t_random": 2, "K": K}
        g = w.f.create_group(name)
        g.attrs["kind"] = "info_nce"
        g.attrs["config"] = json.dumps(cfg)
        g["in/c"], g["in/z"] = c.numpy(), z.numpy()
        for k in range(K):
            g[f"param/Wk.{k}.weight"] = weights[k].numpy()
            g[f"param/Wk.{k}.bias"] = biases[k].numpy()
        cd, zd = c.double().requires_grad_(), z.double().requires_grad_()
        wd = [x.double().requires_grad_() for x in weights]
        bd = [x.double().requires_grad_() for x in biases]
        loss, row_acc, col_acc = info_nce(cd, zd, wd, bd, t_mode, 2, normalize, negatives, exclude, score, 0.5)
        loss.backward()
        g["out/loss"] = loss.item()
        g["out/accuracy_per_k"] = np.array(row_acc)
        g["out/column_accuracy_per_k"] = np.array(col_acc)
        g["grad/in/c"], g["grad/in/z"] = cd.grad.numpy(), zd.grad.numpy()
        for k in range(K):
            g[f"grad/param/Wk.{k}.weight"] = wd[k].grad.numpy()
            g[f"grad/param/Wk.{k}.bias"] = bd[k].grad.numpy()


def info_nce_sampled(c, z, weights, biases, t_mode, t_random, normalize, negatives, exclude_own, score, temperature,
                     n_neg, gen):
    """InfoNCE with sampled negatives: each row's positive and n_neg draws (uniform, with
    replacement) from the columns its mode allows, minus the positive; drawn per k from
    the full mask, so the pools are defined independently of the engine's sampler.
    Returns (loss, row accuracy per k, candidates per k) with rows and columns (t, b)."""
    B, T, _ = c.shape
    K = len(weights)
    Dz = z.shape[2]
    ts, R, valid = info_nce_candidates(B, T, K, t_mode, t_random, negatives, exclude_own)
    pool = valid & ~torch.eye(R, dtype=torch.bool)
    scale = {"dot": 1.0, "scaled_dot": 1.0 / Dz, "cosine": 1.0 / temperature}[score]
    losses, row_acc, cands = [], [], []
    for k in range(1, K + 1):
        cand = torch.empty(R, 1 + n_neg, dtype=torch.long)
        for i in range(R):
            members = pool[i].nonzero().flatten()
            cand[i, 0] = i
            cand[i, 1:] = members[torch.randint(len(members), (n_neg,), generator=gen)]
        pred = torch.cat([c[:, t] @ weights[k - 1].T + biases[k - 1] for t in ts])
        targ = torch.cat([z[:, t + k] for t in ts])
        if score == "cosine":
            pred, targ = F.normalize(pred, dim=1, eps=1e-8), F.normalize(targ, dim=1, eps=1e-8)
        a, cnd = (pred, targ) if normalize == "over_latents" else (targ, pred)
        s = (a @ cnd.T * scale).gather(1, cand)  # (R, 1 + n_neg): the positive in column 0
        losses.append(-torch.log_softmax(s, dim=1)[:, 0].mean())
        row_acc.append((s.argmax(dim=1) == 0).double().mean().item())
        cands.append(cand)
    return torch.stack(losses).mean(), row_acc, cands


def write_info_nce_sampled_cases(w):
    B, T, Dc, Dz, K, N = 4, 9, 6, 4, 3, 5
    c = w.randn(B, T, Dc)
    z = w.randn(B, T, Dz)
    weights = [w.randn(Dz, Dc, scale=0.5) for _ in range(K)]
    biases = [w.randn(Dz, scale=0.1) for _ in range(K)]
    gen = torch.Generator().manual_seed(17)
    grid = [(t, n, neg, sc) for t in ["all", "random"] for n in ["over_latents", "over_predictions"]
            for neg in [("batch", False), ("batch_time", False), ("batch_time", True), ("sequence", False)]
            for sc in ["dot", "cosine"] if not (neg[0] == "sequence" and t != "all")]
    for t_mode, normalize, (negatives, exclude), score in grid:
        name = f"infonce_sampled_{t_mode}_{normalize}_{negatives}{'_exclown' if exclude else ''}_{score}"
        cfg = {"t_mode": t_mode, "normalize": normalize, "negatives": negatives, "exclude_own_sequence": exclude,
               "score": score, "temperature": 0.5, "negatives_count": N, "t_random": 2, "K": K}
        g = w.f.create_group(name)
        g.attrs["kind"] = "info_nce"
        g.attrs["config"] = json.dumps(cfg)
        g["in/c"], g["in/z"] = c.numpy(), z.numpy()
        for k in range(K):
            g[f"param/Wk.{k}.weight"] = weights[k].numpy()
            g[f"param/Wk.{k}.bias"] = biases[k].numpy()
        cd, zd = c.double().requires_grad_(), z.double().requires_grad_()
        wd = [x.double().requires_grad_() for x in weights]
        bd = [x.double().requires_grad_() for x in biases]
        loss, row_acc, cands = info_nce_sampled(cd, zd, wd, bd, t_mode, 2, normalize, negatives, exclude, score, 0.5,
                                                N, gen)
        loss.backward()
        # The engine orders rows and columns (b, t) for sequence negatives: convert.
        nt = cands[0].shape[0] // B
        if negatives == "sequence":
            to_engine = torch.tensor([(r % B) * nt + r // B for r in range(nt * B)])  # (t, b) row -> (b, t) row
            order = torch.argsort(to_engine)  # engine row -> (t, b) row
            cands = [to_engine[x[order]] for x in cands]
        g["in/candidates"] = torch.stack(cands).numpy().astype(np.int64)
        g["out/loss"] = loss.item()
        g["out/accuracy_per_k"] = np.array(row_acc)
        g["grad/in/c"], g["grad/in/z"] = cd.grad.numpy(), zd.grad.numpy()
        for k in range(K):
            g[f"grad/param/Wk.{k}.weight"] = wd[k].grad.numpy()
            g[f"grad/param/Wk.{k}.bias"] = bd[k].grad.numpy()


def write_seed_cases(w):
    # Seed 000: (B, T, 128) latents, (B, T, 256) context, 12 matrices 256 x 128 (small scale: finite exp()).
    B, T, K = 16, 27, 12
    latent = w.randn(B, T, 128, scale=0.1)
    context = w.randn(B, T, 256, scale=0.1)
    W = [w.randn(256, 128, scale=0.1) for _ in range(K)]
    g = w.f.create_group("seed000")
    g.attrs["kind"] = "seed000"
    g.attrs["config"] = json.dumps({"K": K})
    g["in/z"], g["in/c"] = latent.numpy(), context.numpy()
    for k in range(K):
        g[f"param/W.{k}"] = W[k].numpy()
    Ld, Cd, Wd = latent.double(), context.double(), [x.double() for x in W]
    loss, acc = seed000_vectorised(Ld, Cd, Wd)
    g["out/loss_vectorised"] = loss.item()
    g["out/accuracy_vectorised"] = float(acc)
    g["out/loss_loop"] = seed000_loop(Ld, Cd, Wd).item()

    # Seed 004: z (B, 128, 512), c (B, 128, 256), 12 Linear(256, 512), one t.
    B, T, K, t = 8, 128, 12, 57
    z = w.randn(B, T, 512, scale=0.05)
    c = w.randn(B, T, 256, scale=0.5)
    Wk = [torch.nn.Linear(256, 512) for _ in range(K)]
    g = w.f.create_group("seed004")
    g.attrs["kind"] = "seed004"
    g.attrs["config"] = json.dumps({"K": K, "t": t})
    g["in/z"], g["in/c"] = z.numpy(), c.numpy()
    for k, lin in enumerate(Wk):
        w.init_module(lin)
        g[f"param/Wk.{k}.weight"] = lin.weight.detach().numpy()
        g[f"param/Wk.{k}.bias"] = lin.bias.detach().numpy()
    nce, acc = seed004_nce(z.double(), c.double(), [lin.double() for lin in Wk], t)
    g["out/loss"] = nce.item()
    g["out/accuracy_last_k"] = acc


def write_nt_xent_cases(w):
    n, D = 6, 5
    e = w.randn(2 * n, D)
    e[3] = e[1]           # a duplicate embedding
    labels_multi = torch.tensor([0, 1, 0, 1, 2, 2, 0, 3, 1, 2, 4, 0])  # label 3 and 4: anchors without positives
    excluded = [(0, 2), (5, 4), (8, 1)]
    for sim, pairing, form in itertools.product(["cosine", "dot", "neg_l2"], ["views", "labels", "labels_excluded"],
                                                ["supcon", "logsumexp"]):
        name = f"ntxent_{sim}_{pairing}_{form}"
        labels = torch.arange(2 * n) % n if pairing == "views" else labels_multi
        excl = excluded if pairing == "labels_excluded" else []
        temp = 0.5 if sim != "dot" else 2.0
        g = w.f.create_group(name)
        g.attrs["kind"] = "nt_xent"
        g.attrs["config"] = json.dumps({"similarity": sim, "pairing": pairing, "form": form, "temperature": temp})
        g["in/e"] = e.numpy()
        g["in/labels"] = labels.numpy().astype(np.int32)
        g["in/excluded"] = np.array(excl, dtype=np.int32).reshape(-1, 2)
        ed = e.double().requires_grad_()
        loss, acc, used, skipped = nt_xent(ed, labels, excl, sim, temp, form)
        loss.backward()
        g["out/loss"] = loss.item()
        g["out/accuracy"] = acc
        g["out/used"] = used
        g["out/skipped"] = skipped
        g["grad/in/e"] = ed.grad.numpy()


def write_loss_cases(w):
    write_info_nce_cases(w)
    write_info_nce_sampled_cases(w)
    write_seed_cases(w)
    write_nt_xent_cases(w)

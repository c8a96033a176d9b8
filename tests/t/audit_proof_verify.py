#!/usr/bin/env python3
"""An independent verifier of ioffice's audit proofs (audit_proof_record(),
audit_proof()), written from the encodings the functions' comments give,
with nothing but hashlib, json and base64: it recomputes every hash and
trusts none that a proof states.

  audit_proof_verify.py record PROOF [--checkpoint HASH]
      PROOF is audit_proof_record()'s answer.  The record's hash, each later
      record of its chain up to the sealed head, the head's leaf, the audit
      path to the checkpoint's root, the checkpoint's hash; HASH, when
      given, is the checkpoint's hash as a witness holds it.
  audit_proof_verify.py consistency PROOF --held HASH [--held-list FILE]
      PROOF is audit_proof(from, to)'s answer; HASH the hash of checkpoint
      from as a witness holds it.  Every link from it to checkpoint to, and
      the RFC 6962 consistency proof between the trees of checkpoint hashes;
      FILE (a JSON array of the hashes of checkpoints 1..from, hex) lets the
      older tree's root be computed rather than taken from the proof.

Prints {"ok": true, ...} or {"ok": false, "error": "..."} and exits 0 or 1.
On success "content" is the proven checkpoint's canonical form (hex), which
its signature (a detached CMS) signs: openssl cms -verify -binary -inform
DER -content <those bytes> checks it.
"""
import base64
import hashlib
import json
import sys
from datetime import datetime, timedelta, timezone

EPOCH_2000 = datetime(2000, 1, 1, tzinfo=timezone.utc)


class ProofError(Exception):
    pass


def sha256(data):
    return hashlib.sha256(data).digest()


def unhex(value, what):
    try:
        raw = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise ProofError(f"{what} is not hex")
    if len(raw) != 32:
        raise ProofError(f"{what} is not 32 bytes")
    return raw


def micros(at):
    """ "2026-12-02T01:59:46.123456Z" as microseconds since 2000-01-01 UTC """
    t = datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return (t - EPOCH_2000) // timedelta(microseconds=1)


def field(value):
    """ F(x) = <byte length>:<bytes>;  F(NULL) = -; """
    if value is None:
        return b"-;"
    if isinstance(value, bool):
        raise ProofError("a boolean where text or a number belongs")
    if isinstance(value, int):
        value = str(value)
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    return str(len(raw)).encode() + b":" + raw + b";"


def record_hash(r, previous):
    """ the hash of an audit record, over its fields and the previous record's hash """
    return sha256(b"ioffice-audit-1;" + field(r["chain"]) + field(r["seq"]) + field(previous)
                  + field(micros(r["at"])) + field(r["actor_id"]) + field(r["on_behalf_of"])
                  + field(r["db_role"]) + field(r["entity"]) + field(r["entity_id"])
                  + field(r["action"]) + field(r["state_before"]) + field(r["state_after"])
                  + field(r["detail"]))


def head_leaf(chain, seq, h):
    c = chain.encode("utf-8")
    return sha256(b"\x00" + str(len(c)).encode() + b":" + c + b";" + str(seq).encode() + b";" + h)


def node(left, right):
    return sha256(b"\x01" + left + right)


def checkpoint_content(c, previous):
    """ what a checkpoint's hash is taken over, and its signature signs """
    content = ("ioffice-checkpoint-1;%d;%d;%d;%d;" % (c["sequence"], micros(c["at"]), c["chains"],
                                                     c["records"])).encode()
    content += unhex(c["root"], "root")
    if previous is not None:
        content += previous
    return content


def checkpoint_hash(c, previous):
    """ a checkpoint's hash; previous is the one it links to (None for the first) """
    return sha256(checkpoint_content(c, previous))


def mth(leaves):
    """ RFC 6962 2.1: the Merkle tree hash of a list of leaf hashes """
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))


def root_from_path(leaf, index, size, path):
    """ RFC 9162 2.1.3.2: the root an audit path leads to from a leaf """
    if not (0 <= index < size):
        raise ProofError("leaf index outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofError("audit path too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("audit path too short")
    return r


def check_consistency(m, n, old_root, new_root, proof):
    """ RFC 9162 2.1.4.2: that the tree of size n extends the one of size m """
    if not 0 < m <= n:
        raise ProofError("tree sizes out of order")
    if m == n:
        if proof or old_root != new_root:
            raise ProofError("equal sizes, different roots or a proof")
        return
    if m & (m - 1) == 0:
        proof = [old_root] + proof
    if not proof:
        raise ProofError("empty consistency proof")
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise ProofError("consistency proof too long")
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof too short")
    if fr != old_root:
        raise ProofError("the consistency proof does not lead to the older root")
    if sr != new_root:
        raise ProofError("the consistency proof does not lead to the newer root")


def verify_record(proof, held=None):
    r = proof["record"]
    chain = r["chain"]
    previous = None if r["previous"] is None else unhex(r["previous"], "record previous")
    h = record_hash(r, previous)
    seq = r["seq"]
    for step in proof["steps"]:
        if step["chain"] != chain or step["seq"] != seq + 1:
            raise ProofError(f"step {step['seq']} is not the next record of chain {chain}")
        if step["previous"] is None or unhex(step["previous"], "step previous") != h:
            raise ProofError(f"step {step['seq']} does not follow the record before it")
        h = record_hash(step, h)
        seq = step["seq"]
    head = proof["head"]
    if head["chain"] != chain or head["seq"] != seq:
        raise ProofError("the steps do not end at the sealed head")
    if unhex(head["hash"], "head hash") != h:
        raise ProofError("the sealed head is not the hash the steps lead to")
    cp = proof["checkpoint"]
    if proof["tree_size"] != cp["chains"]:
        raise ProofError("the tree's size is not the number of heads the checkpoint lists")
    path = [unhex(p, "path node") for p in proof["path"]]
    root = root_from_path(head_leaf(chain, seq, h), proof["leaf_index"], proof["tree_size"], path)
    if root != unhex(cp["root"], "checkpoint root"):
        raise ProofError("the audit path does not lead to the checkpoint's root")
    previous = None if cp["previous"] is None else unhex(cp["previous"], "checkpoint previous")
    cph = checkpoint_hash(cp, previous)
    if cph != unhex(cp["hash"], "checkpoint hash"):
        raise ProofError("the checkpoint's hash does not match its fields")
    if held is not None and cph != held:
        raise ProofError("the checkpoint is not the one the witness holds")
    if cp["signature"] is not None:
        base64.b64decode(cp["signature"], validate=True)   # a CMS; its check needs openssl
    return {"checkpoint": cp["sequence"], "hash": cph.hex(), "steps": len(proof["steps"]),
            "content": checkpoint_content(cp, previous).hex()}


def verify_consistency(proof, held, held_list=None):
    cps = proof["checkpoints"]
    if not cps or cps[0]["sequence"] != proof["from"] or cps[-1]["sequence"] != proof["to"]:
        raise ProofError("the checkpoints do not run from 'from' to 'to'")
    first = cps[0]
    previous = None if first["previous"] is None else unhex(first["previous"], "previous")
    h = checkpoint_hash(first, previous)
    content = checkpoint_content(first, previous)
    if h != held:
        raise ProofError(f"checkpoint {first['sequence']} is not the one the witness holds")
    for c in cps[1:]:
        if c["previous"] is None or unhex(c["previous"], "previous") != h:
            raise ProofError(f"checkpoint {c['sequence']} does not link to the checkpoint before it")
        content = checkpoint_content(c, h)
        h = sha256(content)
        if h != unhex(c["hash"], "hash"):
            raise ProofError(f"checkpoint {c['sequence']} does not match its hash")
    mk = proof["merkle"]
    m, n = mk["size_from"], mk["size_to"]
    if n - m != len(cps) - 1:
        raise ProofError("the trees' sizes do not differ by the checkpoints listed")
    old_root = unhex(mk["root_from"], "root_from")
    if held_list is not None:
        if len(held_list) != m or unhex(held_list[-1], "held") != held:
            raise ProofError("the witness's list does not end at the held checkpoint")
        if mth([sha256(b"\x00" + unhex(x, "held")) for x in held_list]) != old_root:
            raise ProofError("the older root is not the witness's")
    new_root = unhex(mk["root_to"], "root_to")
    check_consistency(m, n, old_root, new_root, [unhex(x, "consistency node") for x in mk["consistency"]])
    last = root_from_path(sha256(b"\x00" + h), n - 1, n, [unhex(x, "inclusion node") for x in mk["inclusion_to"]])
    if last != new_root:
        raise ProofError("checkpoint 'to' is not the last leaf of the newer tree")
    return {"to": cps[-1]["sequence"], "hash": h.hex(), "content": content.hex()}


def main(argv):
    kind, path = argv[1], argv[2]
    opts = dict(zip(argv[3::2], argv[4::2]))
    with open(path, encoding="utf-8") as f:
        proof = json.load(f)
    try:
        if kind == "record":
            held = unhex(opts["--checkpoint"], "held") if "--checkpoint" in opts else None
            out = verify_record(proof, held)
        elif kind == "consistency":
            held_list = None
            if "--held-list" in opts:
                with open(opts["--held-list"], encoding="utf-8") as f:
                    held_list = json.load(f)
            out = verify_consistency(proof, unhex(opts["--held"], "held"), held_list)
        else:
            raise SystemExit("record or consistency")
    except (ProofError, KeyError, TypeError, ValueError) as e:
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        return 1
    out["ok"] = True
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

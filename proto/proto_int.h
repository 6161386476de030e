/*
 * proto_int.h — private to proto/: pieces shared by the request codec
 * (anc_proto.c) and the response codec (anc_proto_resp.c).
 */
#ifndef ANC_PROTO_INT_H
#define ANC_PROTO_INT_H

#include "anc_proto.h"
#include "mpk.h"

/* Longest contract reference in upsert/query: an ID (16 hex digits) or
 * "name@revision". */
#define PR_CONTRACT_REF_MAX (ANC_CNAME_MAX + 1 + ANC_REVISION_MAX)

/* Check *lim (NULL means the defaults, copied into *use). ANC_EINVAL names
 * a zero field. */
int pr_limits(const anc_limits *lim, anc_limits *use, anc_error *err);

/* Size check, raw scan, unpack. On success *up holds the root, a map, and
 * must be released with msgpack_unpacked_destroy (also on failure: it is
 * always initialised). */
/* max_objects: msgpack values allowed (mpk_scan_objects). */
int pr_unpack(const void *buf, size_t len, const anc_limits *lim,
              uint64_t max_objects, msgpack_unpacked *up, anc_error *err);

/* Contract map <-> anc_contract. Decoding fills types and sizes only;
 * anc_contract_validate is the caller's business. */
int pr_contract_decode(const mpk_dec *d, const msgpack_object *map,
                       const char *path, anc_contract *c);
/* What the decoder would refuse: strings longer than their arrays (or not
 * terminated), unknown metric or index kind. */
int pr_contract_check(const anc_contract *c, const char *path,
                      anc_error *err);
void pr_contract_encode(mpk_w *w, const anc_contract *c);

/* A NUL-terminated string of at most max bytes, for encoders. */
int pr_str_check(const char *s, const char *path, size_t max, int required,
                 anc_error *err);

/* Parse a wire status name against a name function over 0..n-1; -1 when
 * unknown. */
int pr_name_parse(const char *(*name)(int), int n, const char *s);

/* The drift op (drift_wire.c). */
int pr_drift_req_decode(const mpk_dec *d, const msgpack_object *body,
                        anc_req_drift *q);
int pr_drift_req_encode(mpk_w *w, const anc_req_drift *q, anc_error *err);
int pr_drift_resp_encode(mpk_w *w, const anc_drift_report *r,
                         anc_error *err);
int pr_drift_resp_decode(const mpk_dec *d, const msgpack_object *body,
                         anc_drift_report *r);

/* Grounding checks and receipts (ground_wire.c, issue 8). */
void pr_calib_encode(mpk_w *w, const anc_calibration *c);
int pr_calib_decode(const mpk_dec *d, const msgpack_object *m,
                    const char *path, anc_calibration *c);
int pr_prov_check(const anc_provenance *pv, const char *path,
                  anc_error *err);
void pr_prov_encode(mpk_w *w, const anc_provenance *pv);
int pr_prov_decode(const mpk_dec *d, const msgpack_object *pm,
                   const char *path, anc_provenance *pv);
int pr_verify_req_decode(const mpk_dec *d, const msgpack_object *body,
                         anc_req_verify *v);
int pr_verify_req_encode(mpk_w *w, const anc_req_verify *v, anc_error *err);
/* with_text_allowed: 1 for receipt_get, 0 for receipt_replay. */
int pr_receipt_req_decode(const mpk_dec *d, const msgpack_object *body,
                          int with_text_allowed, anc_req_receipt *r);
int pr_receipt_req_encode(mpk_w *w, const anc_req_receipt *r,
                          int with_text_allowed, anc_error *err);
int pr_verify_resp_encode(mpk_w *w, const anc_verify_result *v,
                          anc_error *err);
int pr_verify_resp_decode(const mpk_dec *d, const msgpack_object *body,
                          anc_verify_result *v);
int pr_receipt_resp_encode(mpk_w *w, const anc_receipt *r, anc_error *err);
int pr_receipt_resp_decode(const mpk_dec *d, const msgpack_object *body,
                           anc_receipt *r);
int pr_replay_resp_encode(mpk_w *w, const anc_replay_result *r,
                          anc_error *err);
int pr_replay_resp_decode(const mpk_dec *d, const msgpack_object *body,
                          anc_replay_result *r);

#endif /* ANC_PROTO_INT_H */

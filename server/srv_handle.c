/*
 * srv_handle.c — one request in, one reply out: decode with proto, call the
 * engine, encode the answer. No I/O and no shared state here, so any worker
 * thread may call it at any time; the engine does its own locking.
 *
 * Every path ends in a reply. A request that cannot be decoded still gets
 * an error response carrying its ID when the envelope was readable (else 0),
 * so a client can always match replies to requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_metrics.h"
#include "srv_server.h"

static int
do_upsert(anc_db *db, const anc_req_upsert *u, anc_resp *resp,
          anc_upsert_result **owned, anc_error *err)
{
	anc_upsert_result *res = calloc(u->nrecords ? u->nrecords : 1,
	                                sizeof(*res));
	if (res == NULL)
		return anc_error_set(err, ANC_ENOMEM,
		    "upsert: cannot allocate %u results", u->nrecords);
	*owned = res;
	uint64_t seq = 0;
	int rv = anc_db_upsert(db, u->collection, u->contract, u->records,
	                       u->nrecords, res, &seq, err);
	if (rv != ANC_OK)
		return rv;
	resp->u.upsert.results = res;
	resp->u.upsert.n = u->nrecords;
	resp->u.upsert.seq = seq;
	return ANC_OK;
}

static int
do_delete(anc_db *db, const anc_req_anchors *a, anc_resp *resp,
          anc_delete_result **owned, anc_error *err)
{
	anc_delete_result *res = calloc(a->nanchors ? a->nanchors : 1,
	                                sizeof(*res));
	if (res == NULL)
		return anc_error_set(err, ANC_ENOMEM,
		    "delete: cannot allocate %u results", a->nanchors);
	*owned = res;
	uint64_t seq = 0;
	int rv = anc_db_delete(db, a->collection, a->anchors, a->nanchors, res,
	                       &seq, err);
	if (rv != ANC_OK)
		return rv;
	resp->u.del.results = res;
	resp->u.del.n = a->nanchors;
	resp->u.del.seq = seq;
	return ANC_OK;
}

int
anc_server_handle(anc_db *db, const anc_auth *auth, const anc_limits *lim,
                  const void *msg, size_t len, anc_buf *out)
{
	anc_error err;
	anc_req *req = NULL;
	uint64_t id = 0;
	anc_resp resp;
	anc_query_result *qres = NULL;
	anc_info *info = NULL;
	anc_resolved *resolved = NULL;
	uint32_t nresolved = 0;
	anc_upsert_result *ures = NULL;
	anc_delete_result *dres = NULL;
	anc_check_result *cres = NULL;
	anc_verify_result *vres = NULL;
	anc_receipt *rcpt = NULL;
	anc_replay_result *replay = NULL;
	double t0 = srv_metrics_now();
	int rv, op = -1;

	anc_error_clear(&err);
	anc_buf_reset(out);
	memset(&resp, 0, sizeof(resp));

	rv = anc_req_decode_op(msg, len, lim, &req, &id, &op, &err);
	if (rv != ANC_OK)
		goto reply;
	resp.id = req->id;
	resp.op = req->op;
	/* Before the store is touched, so that a refusal reveals nothing
	 * about what exists. */
	if ((rv = anc_auth_authorize(auth, req->op, req->auth, &err)) != ANC_OK)
		goto reply;

	switch (req->op) {
	case ANC_OP_PING:
		(void)snprintf(resp.u.ping.version, sizeof(resp.u.ping.version),
		               "%s", ANCHORAGE_VERSION);
		break;
	case ANC_OP_INFO:
		rv = anc_db_info(db, &info, &err);
		if (rv == ANC_OK)
			resp.u.info = *info;
		break;
	case ANC_OP_COLLECTION_CREATE:
		rv = anc_db_collection_create(db, req->u.collection_create.name,
		    &resp.u.collection_create.created, &err);
		break;
	case ANC_OP_CONTRACT_REGISTER:
		rv = anc_db_contract_register_canaries(db,
		    req->u.contract_register.collection,
		    &req->u.contract_register.contract,
		    req->u.contract_register.canaries,
		    req->u.contract_register.ncanaries,
		    resp.u.contract_register.id,
		    &resp.u.contract_register.created, &err);
		break;
	case ANC_OP_CONTRACT_PROMOTE:
		rv = anc_db_contract_promote(db,
		    req->u.contract_state.collection,
		    req->u.contract_state.contract, req->u.contract_state.force,
		    resp.u.contract_state.id, resp.u.contract_state.previous,
		    &err);
		resp.u.contract_state.state = ANC_CSTATE_DEFAULT;
		break;
	case ANC_OP_CONTRACT_RETIRE:
		rv = anc_db_contract_retire(db, req->u.contract_state.collection,
		    req->u.contract_state.contract, resp.u.contract_state.id,
		    &err);
		resp.u.contract_state.state = ANC_CSTATE_RETIRED;
		break;
	case ANC_OP_CONTRACT_CHECK: {
		const anc_req_check *c = &req->u.contract_check;
		rv = anc_db_contract_check(db, c->collection, c->contract,
		                           c->vectors, c->n, c->dim, &cres, &err);
		if (rv == ANC_OK)
			resp.u.check = *cres;
		break;
	}
	case ANC_OP_UPSERT:
		rv = do_upsert(db, &req->u.upsert, &resp, &ures, &err);
		break;
	case ANC_OP_QUERY: {
		const anc_req_query *q = &req->u.query;
		anc_query_opts qo = {q->ef, q->nprobe, q->exact, q->rerank,
		                     q->with_meta, q->pins, q->npins};
		rv = anc_db_query2(db, q->collection, q->contract, q->vectors,
		                   q->nq, q->dim, q->k, q->with_text, &qo, &qres,
		                   &err);
		/* issue 8: the receipt records exactly this answer */
		if (rv == ANC_OK && q->receipt)
			rv = anc_db_receipt_query(db, q->collection, q->vectors,
			                          q->nq, q->dim, q->k,
			                          q->with_text, &qo, qres, &err);
		if (rv == ANC_OK) {
			resp.u.query.lists = qres->lists;
			resp.u.query.nq = qres->nq;
			resp.u.query.prov = qres->prov;
			resp.u.query.pinned = qres->pinned;
			resp.u.query.npinned = qres->npinned;
		}
		break;
	}
	case ANC_OP_RESOLVE:
		rv = anc_db_resolve(db, req->u.resolve.collection,
		                    req->u.resolve.anchors,
		                    req->u.resolve.nanchors, &resolved, &err);
		if (rv == ANC_OK) {
			nresolved = req->u.resolve.nanchors;
			resp.u.resolve.results = resolved;
			resp.u.resolve.n = nresolved;
		}
		break;
	case ANC_OP_DELETE:
		rv = do_delete(db, &req->u.del, &resp, &dres, &err);
		break;
	case ANC_OP_DRIFT:
		rv = ANC_OK;
		/* A configuration change ("set") is an admin's act, like
		 * registering a contract; the report alone is a read. */
		if (req->u.drift.set != NULL && req->u.drift.set[0] != '\0' &&
		    (rv = anc_auth_require(auth,
		         anc_op_role(ANC_OP_CONTRACT_REGISTER),
		         "drift set (a configuration change)", req->auth,
		         &err)) == ANC_OK)
			rv = anc_db_drift_set(db, req->u.drift.collection,
			                      req->u.drift.contract,
			                      req->u.drift.set, &err);
		if (rv == ANC_OK)
			/* after a change, a report under the new settings:
			 * the latest one predates them */
			rv = anc_db_drift_report(db, req->u.drift.collection,
			                         req->u.drift.contract,
			                         req->u.drift.fresh ||
			                             (req->u.drift.set != NULL &&
			                              req->u.drift.set[0] != '\0'),
			                         &resp.u.drift, &err);
		break;
	case ANC_OP_VERIFY: {
		const anc_req_verify *v = &req->u.verify;
		rv = anc_db_verify(db, v->collection, v->contract, v->claims,
		                   v->n, v->receipt, &vres, &err);
		if (rv == ANC_OK)
			resp.u.verify = *vres;
		break;
	}
	case ANC_OP_RECEIPT_GET:
		rv = anc_db_receipt_get(db, req->u.receipt.id,
		                        req->u.receipt.with_text, &rcpt, &err);
		if (rv == ANC_OK)
			resp.u.receipt = *rcpt;
		break;
	case ANC_OP_RECEIPT_REPLAY:
		rv = anc_db_receipt_replay(db, req->u.receipt.id, &replay, &err);
		if (rv == ANC_OK)
			resp.u.replay = *replay;
		break;
	default:
		rv = anc_error_set(&err, ANC_EUNSUPPORTED,
		    "op %d is not handled by this server", (int)req->op);
		break;
	}
	if (rv == ANC_OK)
		rv = anc_resp_encode(&resp, out, &err);
	/* The engine bounds the big answers as it builds them (reply_max);
	 * whatever still comes out over the limit could not travel: nng on
	 * the other side drops it, and the client would only time out. */
	if (rv == ANC_OK && out->len > lim->max_message)
		rv = anc_error_set(&err, ANC_ETOOBIG,
		    "%s: the answer is %zu bytes, over the max message %u",
		    anc_op_name(req->op), out->len, lim->max_message);

reply:
	if (rv != ANC_OK) {
		if (err.code == ANC_OK) /* a callee forgot its message */
			anc_error_set(&err, rv, "%s", anc_strerror(rv));
		anc_buf_reset(out);
		rv = anc_resp_encode_error(req ? req->id : id, &err, out);
	}
	if (qres != NULL) {
		uint32_t flagged = 0;
		for (uint32_t q = 0; q < qres->nq; q++)
			flagged += qres->lists[q].drift_flag != 0;
		srv_metrics_drift_flags(flagged, qres->nq);
	}
	srv_metrics_request(op, err.code,
	                    srv_metrics_now() - t0);
	anc_query_result_free(qres);
	anc_info_free(info);
	anc_resolved_free(resolved, nresolved);
	free(ures);
	free(dres);
	anc_check_result_free(cres);
	anc_verify_result_free(vres);
	anc_receipt_free(rcpt);
	anc_replay_result_free(replay);
	anc_req_free(req);
	return rv;
}

/*
 * anc_client.c — libanchorage-client over one nng REQ0 socket.
 *
 * Design note
 * -----------
 * Every call is the same round trip: build an anc_req, encode it with the
 * wire codec, nng_send, nng_recv (NNG_FLAG_ALLOC, so the reply size is not
 * guessed), decode with anc_resp_decode for the op we sent, then check the
 * reply's request ID against ours. The REQ protocol already drops replies to
 * older requests; the application-level ID check catches a server that
 * answers the wrong request, which would otherwise hand a caller someone
 * else's hits.
 *
 * The dial is non-blocking (NNG_FLAG_NONBLOCK): nng keeps redialling in the
 * background, so a client opened a moment before its server starts still
 * gets through, and a server that never comes shows up as ANC_ETIMEOUT on
 * the first call instead of a failure at open time.
 *
 * NNG_OPT_RECVMAXSZ is raised to limits.max_message (nng's default of 1 MiB
 * is smaller than a query answer with text). The REQ resend timer is set to
 * the call timeout so that nng never re-sends a slow request (an upsert of a
 * big batch) while we are still waiting for its first answer; a request whose
 * connection drops is still re-sent by nng on the new connection, and every
 * operation is idempotent.
 *
 * Threading: one client per thread; calls on a client must not overlap
 * (anc_client.h). The client holds no locks.
 */
#include "anc_client.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

struct anc_client {
	nng_socket sock;
	int sock_open;
	char *url;
	anc_client_options opt;
	uint64_t next_id; /* ID of the next request; starts at 1 */
	anc_buf buf;      /* encode buffer, reused across calls */
};

void
anc_client_options_default(anc_client_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->timeout_ms = 30000;
	anc_limits_default(&opt->limits);
}

/* Translate an nng error, keeping nng's own message. */
static int
client_nng_error(anc_error *err, int rv, const char *what, const char *url,
                 int timeout_ms)
{
	if (rv == NNG_ETIMEDOUT)
		return anc_error_set(err, ANC_ETIMEOUT,
		    "%s %s: %s after %d ms (is anchorage-server running "
		    "there?)", what, url, nng_strerror(rv), timeout_ms);
	if (rv == NNG_ENOMEM)
		return anc_error_set(err, ANC_ENOMEM, "%s %s: %s", what, url,
		    nng_strerror(rv));
	return anc_error_set(err, ANC_ETRANSPORT, "%s %s: %s", what, url,
	    nng_strerror(rv));
}

void
anc_client_close(anc_client *c)
{
	if (c == NULL)
		return;
	if (c->sock_open)
		(void)nng_close(c->sock); /* nothing useful to do on failure */
	anc_buf_free(&c->buf);
	free(c->url);
	free(c);
}

int
anc_client_open(const char *url, const anc_client_options *opt,
                anc_client **out, anc_error *err)
{
	anc_client *c = NULL;
	int rv;
	int code;

	*out = NULL;
	if (url == NULL || url[0] == '\0')
		return anc_error_set(err, ANC_EINVAL,
		    "server url: expected tcp://HOST:PORT or ipc://PATH, got "
		    "an empty string");
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->url = strdup(url)) == NULL) {
		code = anc_error_set(err, ANC_ENOMEM,
		    "client for %s: out of memory", url);
		goto fail;
	}
	if (opt != NULL)
		c->opt = *opt;
	else
		anc_client_options_default(&c->opt);
	if (c->opt.timeout_ms <= 0) {
		code = anc_error_set(err, ANC_EINVAL,
		    "timeout_ms: expected a positive number of milliseconds, "
		    "got %d", c->opt.timeout_ms);
		goto fail;
	}
	if (c->opt.limits.max_message == 0 || c->opt.limits.max_queries == 0 ||
	    c->opt.limits.max_hits == 0) {
		code = anc_error_set(err, ANC_EINVAL,
		    "limits: zero fields are not allowed (start from "
		    "anc_limits_default)");
		goto fail;
	}
	c->next_id = 1;
	anc_buf_init(&c->buf);

	if ((rv = nng_req0_open(&c->sock)) != 0) {
		code = client_nng_error(err, rv, "open REQ socket for", url, 0);
		goto fail;
	}
	c->sock_open = 1;
	if ((rv = nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO,
	         c->opt.timeout_ms)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO,
	         c->opt.timeout_ms)) != 0 ||
	    (rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME,
	         c->opt.timeout_ms)) != 0 ||
	    (rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ,
	         c->opt.limits.max_message)) != 0) {
		code = client_nng_error(err, rv, "set socket options for", url,
		    0);
		goto fail;
	}
	/* Non-blocking: a bad URL still fails here (NNG_EADDRINVAL,
	 * NNG_ENOTSUP), an absent server does not. */
	if ((rv = nng_dial(c->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		code = client_nng_error(err, rv, "dial", url, 0);
		goto fail;
	}
	*out = c;
	return ANC_OK;

fail:
	anc_client_close(c);
	return code;
}

/* Send the bytes in c->buf and receive one reply into *reply (nng-allocated,
 * released with nng_free(*reply, *reply_len)). */
static int
client_exchange(anc_client *c, void **reply, size_t *reply_len,
                anc_error *err)
{
	int rv;

	*reply = NULL;
	*reply_len = 0;
	/* nng_send copies the buffer when flags lack NNG_FLAG_ALLOC. */
	if ((rv = nng_send(c->sock, c->buf.data, c->buf.len, 0)) != 0)
		return client_nng_error(err, rv, "send to", c->url,
		    c->opt.timeout_ms);
	if ((rv = nng_recv(c->sock, reply, reply_len, NNG_FLAG_ALLOC)) != 0) {
		*reply = NULL;
		*reply_len = 0;
		return client_nng_error(err, rv, "receive from", c->url,
		    c->opt.timeout_ms);
	}
	return ANC_OK;
}

/* One full round trip for *req (whose id is assigned here). On success *out
 * owns the decoded response; a server error is returned as its code with
 * err->msg = "NAME: server message" and *out NULL. */
static int
client_call(anc_client *c, anc_req *req, anc_resp **out, anc_error *err)
{
	void *reply = NULL;
	size_t reply_len = 0;
	anc_resp *resp = NULL;
	int code;

	*out = NULL;
	if (c == NULL)
		return anc_error_set(err, ANC_EINVAL, "client: NULL handle");
	req->id = c->next_id++;
	anc_buf_reset(&c->buf);
	if ((code = anc_req_encode(req, &c->buf, err)) != ANC_OK) {
		anc_error_wrap(err, "%s request", anc_op_name(req->op));
		goto leave;
	}
	if ((code = client_exchange(c, &reply, &reply_len, err)) != ANC_OK)
		goto leave;
	if ((code = anc_resp_decode(reply, reply_len, req->op,
	         &c->opt.limits, &resp, err)) != ANC_OK) {
		anc_error_wrap(err, "reply from %s to %s", c->url,
		    anc_op_name(req->op));
		goto leave;
	}
	/* A server that could not read our envelope answers with ID 0. */
	if (resp->id != req->id && !(resp->code != 0 && resp->id == 0)) {
		code = anc_error_set(err, ANC_EMALFORMED,
		    "reply from %s: id: expected %llu (our request), got %llu",
		    c->url, (unsigned long long)req->id,
		    (unsigned long long)resp->id);
		goto leave;
	}
	if (resp->code != 0) {
		code = resp->code;
		if (code < 0 || code >= ANC_ECODE_MAX)
			code = anc_error_set(err, ANC_EINTERNAL,
			    "server %s sent unknown error code %d: %s", c->url,
			    resp->code,
			    resp->message ? resp->message : "(no message)");
		else
			code = anc_error_set(err, code, "%s: %s",
			    anc_errname(code),
			    resp->message && resp->message[0]
			        ? resp->message : anc_strerror(code));
		goto leave;
	}
	*out = resp;
	resp = NULL;
	code = ANC_OK;
leave:
	anc_resp_free(resp);
	if (reply != NULL)
		nng_free(reply, reply_len);
	return code;
}

int
anc_client_ping(anc_client *c, anc_resp **out, anc_error *err)
{
	anc_req req;

	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_PING;
	return client_call(c, &req, out, err);
}

int
anc_client_info(anc_client *c, anc_resp **out, anc_error *err)
{
	anc_req req;

	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_INFO;
	return client_call(c, &req, out, err);
}

int
anc_client_collection_create(anc_client *c, const char *name, anc_resp **out,
                             anc_error *err)
{
	anc_req req;

	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_COLLECTION_CREATE;
	req.u.collection_create.name = name;
	return client_call(c, &req, out, err);
}

int
anc_client_contract_register(anc_client *c, const char *collection,
                             const anc_contract *contract, anc_resp **out,
                             anc_error *err)
{
	anc_req req;

	*out = NULL;
	if (contract == NULL)
		return anc_error_set(err, ANC_EINVAL, "contract: NULL");
	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_CONTRACT_REGISTER;
	req.u.contract_register.collection = collection;
	req.u.contract_register.contract = *contract;
	return client_call(c, &req, out, err);
}

int
anc_client_upsert(anc_client *c, const char *collection, const char *contract,
                  const anc_record *records, uint32_t n, anc_resp **out,
                  anc_error *err)
{
	anc_req req;

	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_UPSERT;
	req.u.upsert.collection = collection;
	req.u.upsert.contract = contract;
	/* The encoder only reads the records (anc_proto.h: encoders borrow). */
	req.u.upsert.records = (anc_record *)records;
	req.u.upsert.nrecords = n;
	return client_call(c, &req, out, err);
}

int
anc_client_query(anc_client *c, const char *collection, const char *contract,
                 const float *vecs, uint32_t nq, uint32_t dim, uint32_t k,
                 int with_text, anc_resp **out, anc_error *err)
{
	anc_req req;

	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_QUERY;
	req.u.query.collection = collection;
	req.u.query.contract = contract != NULL ? contract : "";
	req.u.query.vectors = (float *)vecs; /* borrowed, read only */
	req.u.query.nq = nq;
	req.u.query.dim = dim;
	req.u.query.k = k;
	req.u.query.with_text = with_text ? 1 : 0;
	return client_call(c, &req, out, err);
}

int
anc_client_resolve(anc_client *c, const char *collection,
                   const anc_anchor_str *anchors, uint32_t n, anc_resp **out,
                   anc_error *err)
{
	anc_req req;

	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_RESOLVE;
	req.u.resolve.collection = collection;
	req.u.resolve.anchors = (anc_anchor_str *)anchors; /* read only */
	req.u.resolve.nanchors = n;
	return client_call(c, &req, out, err);
}

int
anc_client_delete(anc_client *c, const char *collection,
                  const anc_anchor_str *anchors, uint32_t n, anc_resp **out,
                  anc_error *err)
{
	anc_req req;

	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_DELETE;
	req.u.del.collection = collection;
	req.u.del.anchors = (anc_anchor_str *)anchors; /* read only */
	req.u.del.nanchors = n;
	return client_call(c, &req, out, err);
}

int
anc_client_raw(anc_client *c, const void *msg, size_t len, void **reply,
               size_t *reply_len, anc_error *err)
{
	void *nbuf = NULL;
	size_t nlen = 0;
	void *copy;
	int rv;

	*reply = NULL;
	*reply_len = 0;
	if (c == NULL)
		return anc_error_set(err, ANC_EINVAL, "client: NULL handle");
	if (msg == NULL && len != 0)
		return anc_error_set(err, ANC_EINVAL,
		    "msg: NULL with length %zu", len);
	if ((rv = nng_send(c->sock, (void *)msg, len, 0)) != 0)
		return client_nng_error(err, rv, "send to", c->url,
		    c->opt.timeout_ms);
	if ((rv = nng_recv(c->sock, &nbuf, &nlen, NNG_FLAG_ALLOC)) != 0)
		return client_nng_error(err, rv, "receive from", c->url,
		    c->opt.timeout_ms);
	/* The caller frees with free(), so move the reply out of nng's
	 * allocator; malloc(0) may return NULL, hence the +1. */
	if ((copy = malloc(nlen + 1)) == NULL) {
		nng_free(nbuf, nlen);
		return anc_error_set(err, ANC_ENOMEM,
		    "reply from %s: cannot copy %zu bytes", c->url, nlen);
	}
	if (nlen > 0)
		memcpy(copy, nbuf, nlen);
	nng_free(nbuf, nlen);
	*reply = copy;
	*reply_len = nlen;
	return ANC_OK;
}

/*
 * fuzz_req.c — libFuzzer target for the request decoder (anc_req_decode),
 * the first code that touches bytes from the network.
 *
 * Invariants checked on every input:
 *   - a refused message gives a real anc_code and a one-line message, and
 *     no request;
 *   - an accepted request re-encodes (anc_req_encode), the encoding decodes
 *     again, and encoding that gives the same bytes: encode is a fixed
 *     point of decode . encode, so nothing the decoder accepts is lost or
 *     changed on the way back;
 *   - the envelope's id is reported whenever the request decodes;
 *   - limits are monotone: a message accepted under tight limits is
 *     accepted under the defaults too.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "anc_proto.h"
#include "fuzz_common.h"

static void
tight_limits(anc_limits *lim)
{
	anc_limits_default(lim);
	lim->max_message = 4096;
	lim->max_records = 3;
	lim->max_queries = 2;
	lim->max_k = 5;
	lim->max_text = 64;
	lim->max_meta = 64;
	lim->max_anchors = 3;
	lim->max_hits = 8;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	anc_limits lim, tight;
	anc_req *req = NULL, *req2 = NULL;
	anc_error err = {0};
	anc_buf b1, b2;
	uint64_t id = 0;
	int rc;

	anc_limits_default(&lim);
	tight_limits(&tight);
	anc_buf_init(&b1);
	anc_buf_init(&b2);

	rc = anc_req_decode(data, size, &lim, &req, &id, &err);
	if (rc != ANC_OK) {
		fz_check_error(rc, &err, "anc_req_decode");
		FZ_CHECK(req == NULL, "decode failed (%d) but returned a "
		         "request", rc);
	} else {
		FZ_CHECK(req != NULL, "decode succeeded without a request");
		FZ_CHECK(id == req->id, "id_out %llu, request id %llu",
		         (unsigned long long)id, (unsigned long long)req->id);
		FZ_CHECK((int)req->op >= 0 && req->op < ANC_OP__COUNT,
		         "op %d out of range", (int)req->op);
		rc = anc_req_encode(req, &b1, &err);
		FZ_CHECK(rc == ANC_OK, "decoded %s request does not re-encode: "
		         "%s: %s", anc_op_name(req->op), anc_errname(rc),
		         err.msg);
		rc = anc_req_decode(b1.data, b1.len, &lim, &req2, NULL, &err);
		FZ_CHECK(rc == ANC_OK, "re-encoded %s request does not decode: "
		         "%s: %s", anc_op_name(req->op), anc_errname(rc),
		         err.msg);
		FZ_CHECK(req2->op == req->op && req2->id == req->id,
		         "op/id changed: %d/%llu -> %d/%llu", (int)req->op,
		         (unsigned long long)req->id, (int)req2->op,
		         (unsigned long long)req2->id);
		FZ_CHECK((req->auth == NULL) == (req2->auth == NULL) &&
		         (req->auth == NULL ||
		          strcmp(req->auth, req2->auth) == 0),
		         "auth changed on the round trip");
		rc = anc_req_encode(req2, &b2, &err);
		FZ_CHECK(rc == ANC_OK, "second encode failed: %s", err.msg);
		FZ_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data,
		         b1.len) == 0, "%s request: encode(decode(encode(x))) "
		         "differs from encode(x) (%zu vs %zu bytes)",
		         anc_op_name(req->op), b1.len, b2.len);
	}
	anc_req_free(req2);
	req2 = NULL;

	/* Accepted under tight limits => accepted under the defaults. */
	int trc = anc_req_decode(data, size, &tight, &req2, NULL, &err);
	if (trc != ANC_OK)
		fz_check_error(trc, &err, "anc_req_decode (tight limits)");
	else
		FZ_CHECK(req != NULL, "accepted under tight limits, refused "
		         "under the defaults");

	anc_req_free(req2);
	anc_req_free(req);
	anc_buf_free(&b1);
	anc_buf_free(&b2);
	return 0;
}

/*
 * fuzz_resp.c — libFuzzer target for the response decoder
 * (anc_resp_decode), for every operation: a client must survive whatever a
 * server (or something pretending to be one) sends back.
 *
 * Input: byte 0 picks the operation (modulo ANC_OP__COUNT), the rest is the
 * message. Invariants:
 *   - a refused message gives a real anc_code and a one-line message;
 *   - an accepted success response re-encodes (anc_resp_encode), decodes
 *     again and encodes to the same bytes (a fixed point);
 *   - an accepted error response has a non-zero code and a message, and
 *     anc_resp_encode_error of that code and message decodes back to the
 *     same code and message.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "anc_proto.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	anc_limits lim;
	anc_resp *resp = NULL, *resp2 = NULL;
	anc_error err = {0};
	anc_buf b1, b2;
	anc_op op;
	int rc;

	if (size < 1)
		return 0;
	op = (anc_op)(data[0] % ANC_OP__COUNT);
	data++;
	size--;
	anc_limits_default(&lim);
	anc_buf_init(&b1);
	anc_buf_init(&b2);

	rc = anc_resp_decode(data, size, op, &lim, &resp, &err);
	if (rc != ANC_OK) {
		fz_check_error(rc, &err, "anc_resp_decode");
		FZ_CHECK(resp == NULL, "decode failed but returned a response");
		goto done;
	}
	FZ_CHECK(resp != NULL && resp->op == op, "response op not %s",
	         anc_op_name(op));
	if (resp->code != 0) {
		anc_error e = {0};
		FZ_CHECK(resp->code > 0 && resp->message != NULL,
		         "error response: code %d, message %p", resp->code,
		         (void *)resp->message);
		if (resp->code >= ANC_ECODE_MAX ||
		    strlen(resp->message) >= sizeof e.msg)
			goto done; /* the encoder maps/cuts these by design */
		e.code = resp->code;
		memcpy(e.msg, resp->message, strlen(resp->message) + 1);
		rc = anc_resp_encode_error(resp->id, &e, &b1);
		FZ_CHECK(rc == ANC_OK, "encode_error failed: %d", rc);
		rc = anc_resp_decode(b1.data, b1.len, op, &lim, &resp2, &err);
		FZ_CHECK(rc == ANC_OK, "re-encoded error does not decode: %s",
		         err.msg);
		FZ_CHECK(resp2->code == resp->code && resp2->id == resp->id &&
		         strcmp(resp2->message, resp->message) == 0,
		         "error response changed on the round trip");
		goto done;
	}
	rc = anc_resp_encode(resp, &b1, &err);
	FZ_CHECK(rc == ANC_OK, "decoded %s response does not re-encode: "
	         "%s: %s", anc_op_name(op), anc_errname(rc), err.msg);
	rc = anc_resp_decode(b1.data, b1.len, op, &lim, &resp2, &err);
	FZ_CHECK(rc == ANC_OK, "re-encoded %s response does not decode: "
	         "%s: %s", anc_op_name(op), anc_errname(rc), err.msg);
	FZ_CHECK(resp2->id == resp->id && resp2->code == 0,
	         "id/code changed on the round trip");
	rc = anc_resp_encode(resp2, &b2, &err);
	FZ_CHECK(rc == ANC_OK, "second encode failed: %s", err.msg);
	FZ_CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0,
	         "%s response: encode(decode(encode(x))) differs from "
	         "encode(x) (%zu vs %zu bytes)", anc_op_name(op), b1.len,
	         b2.len);
done:
	anc_resp_free(resp2);
	anc_resp_free(resp);
	anc_buf_free(&b1);
	anc_buf_free(&b2);
	return 0;
}

/*
 * proto_test.c — the wire codec (proto/anc_proto.h).
 *
 * Round trips of every request and response, then every way a peer can
 * get a message wrong: every truncation of every valid message, trailing
 * bytes, wrong types, missing fields, bad versions and ops, counts over the
 * limits, bad vectors, embedded NULs, bad anchors, deep nesting, lying
 * container counts, and a fixed-seed mutation fuzz loop.
 *
 * Hand-written messages are written as JSON (readable) and converted to
 * msgpack by pack_json with two conventions for what JSON lacks:
 * a string "#f:1,2,3" becomes a bin of little-endian float32 {1,2,3}, and
 * "#x:0a0b" a bin of those raw bytes. JSON reals become msgpack float64.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "anc_proto.h"
#include "anc_url.h"

/* ---- helpers ------------------------------------------------------------- */

static void pack_json(msgpack_packer *pk, json_t *j);

static void
pack_bin_spec(msgpack_packer *pk, const char *s)
{
	uint8_t bytes[4096];
	size_t n = 0;

	if (strncmp(s, "#f:", 3) == 0) {
		const char *p = s + 3;
		while (*p) {
			char *end;
			float f = strtof(p, &end);
			cr_assert(end != p, "bad #f spec %s", s);
			uint32_t u;
			memcpy(&u, &f, 4);
			for (int b = 0; b < 4; b++)
				bytes[n++] = (uint8_t)(u >> (8 * b));
			p = *end == ',' ? end + 1 : end;
		}
	} else {
		const char *p = s + 3;
		while (p[0] && p[1]) {
			unsigned v;
			cr_assert(sscanf(p, "%2x", &v) == 1);
			bytes[n++] = (uint8_t)v;
			p += 2;
		}
	}
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, bytes, n);
}

static void
pack_json(msgpack_packer *pk, json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		msgpack_pack_map(pk, json_object_size(j));
		json_object_foreach(j, k, v) {
			msgpack_pack_str(pk, strlen(k));
			msgpack_pack_str_body(pk, k, strlen(k));
			pack_json(pk, v);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;
		msgpack_pack_array(pk, json_array_size(j));
		json_array_foreach(j, i, v) pack_json(pk, v);
		break;
	}
	case JSON_STRING: {
		const char *s = json_string_value(j);
		size_t n = json_string_length(j);
		if (strncmp(s, "#f:", 3) == 0 || strncmp(s, "#x:", 3) == 0) {
			pack_bin_spec(pk, s);
		} else {
			msgpack_pack_str(pk, n);
			msgpack_pack_str_body(pk, s, n);
		}
		break;
	}
	case JSON_INTEGER:
		msgpack_pack_int64(pk, json_integer_value(j));
		break;
	case JSON_REAL:
		msgpack_pack_double(pk, json_real_value(j));
		break;
	case JSON_TRUE: msgpack_pack_true(pk); break;
	case JSON_FALSE: msgpack_pack_false(pk); break;
	case JSON_NULL: msgpack_pack_nil(pk); break;
	}
}

/* JSON text -> msgpack bytes in sb (caller destroys sb). */
static void
mp_from_json(const char *text, msgpack_sbuffer *sb)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
	cr_assert_not_null(j, "bad test JSON: %s: %s", je.text, text);
	msgpack_sbuffer_init(sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	pack_json(&pk, j);
	json_decref(j);
}

static anc_limits g_lim;

/* substr NULL: any message will do. */
static void
expect_msg(const char *msg, const char *substr)
{
	if (substr != NULL)
		cr_expect(strstr(msg, substr) != NULL, "message '%s' lacks '%s'",
		    msg, substr);
}

static void
setup(void)
{
	anc_limits_default(&g_lim);
}

TestSuite(proto, .init = setup);

/* Decode a JSON-described request; return the code; free on success. */
static int
req_json(const char *text, anc_error *err, uint64_t *id)
{
	msgpack_sbuffer sb;
	anc_req *req = (anc_req *)1;
	mp_from_json(text, &sb);
	anc_error_clear(err);
	int rv = anc_req_decode(sb.data, sb.size, &g_lim, &req, id, err);
	msgpack_sbuffer_destroy(&sb);
	if (rv == ANC_OK) {
		cr_assert_not_null(req);
		anc_req_free(req);
	} else {
		cr_assert_null(req, "out must be NULL on failure");
		cr_assert_eq(err->code, rv, "err->code %d != rv %d", err->code,
		    rv);
		cr_assert(err->msg[0] != '\0', "empty error message");
	}
	return rv;
}

#define EXPECT_REQ(json, code, substr)                                       \
	do {                                                                 \
		anc_error e_;                                                \
		int rv_ = req_json(json, &e_, NULL);                         \
		cr_expect_eq(rv_, code, "%s\n -> %d (%s), expected %d", json, \
		    rv_, e_.msg, code);                                      \
		if (rv_ != ANC_OK)                                           \
			expect_msg(e_.msg, substr);                          \
	} while (0)

static int
resp_json(const char *text, anc_op op, anc_error *err)
{
	msgpack_sbuffer sb;
	anc_resp *resp = (anc_resp *)1;
	mp_from_json(text, &sb);
	anc_error_clear(err);
	int rv = anc_resp_decode(sb.data, sb.size, op, &g_lim, &resp, err);
	msgpack_sbuffer_destroy(&sb);
	if (rv == ANC_OK)
		anc_resp_free(resp);
	else
		cr_assert_null(resp);
	return rv;
}

#define EXPECT_RESP(json, op, code, substr)                                  \
	do {                                                                 \
		anc_error e_;                                                \
		int rv_ = resp_json(json, op, &e_);                          \
		cr_expect_eq(rv_, code, "%s\n -> %d (%s), expected %d", json, \
		    rv_, e_.msg, code);                                      \
		if (rv_ != ANC_OK)                                           \
			expect_msg(e_.msg, substr);                          \
	} while (0)

static void
anchor_of(const char *source, const char *chunk, anc_anchor_str out)
{
	uint8_t raw[ANC_ANCHOR_RAW];
	cr_assert_eq(anc_anchor_compute("docs", source, chunk, raw), ANC_OK);
	anc_anchor_format(raw, out);
}

/* A valid anchor to paste into JSON. */
static const char *
A(int i)
{
	static anc_anchor_str pool[4];
	char s[16];
	snprintf(s, sizeof(s), "s%d", i);
	anchor_of(s, "c", pool[i % 4]);
	return pool[i % 4];
}

static anc_contract
sample_contract(void)
{
	anc_contract c;
	anc_contract_init(&c);
	strcpy(c.name, "minilm");
	strcpy(c.model, "sentence-transformers/all-MiniLM-L6-v2");
	strcpy(c.revision, "r1");
	strcpy(c.preprocess, "lower;nfkc");
	c.dim = 3;
	c.metric = ANC_METRIC_IP;
	c.normalize = 0;
	c.index.kind = ANC_INDEX_HNSW;
	c.index.m = 16;
	c.index.ef_construction = 100;
	c.index.ef_search = 50;
	return c;
}

/* A request (response) of operation op with request ID id, nothing else
 * set, and an empty buffer to encode it into (anc_buf_free it). */
static void
req_start(anc_req *req, anc_buf *buf, uint64_t id, anc_op op)
{
	anc_buf_init(buf);
	memset(req, 0, sizeof(*req));
	req->id = id;
	req->op = op;
}

static void
resp_start(anc_resp *resp, anc_buf *buf, uint64_t id, anc_op op)
{
	anc_buf_init(buf);
	memset(resp, 0, sizeof(*resp));
	resp->id = id;
	resp->op = op;
}

/* Encode req, decode it back; the caller frees *out. */
static anc_req *
req_roundtrip(const anc_req *req, anc_buf *buf)
{
	anc_error err;
	anc_req *out = NULL;
	uint64_t id = 0;
	anc_buf_reset(buf);
	cr_assert_eq(anc_req_encode(req, buf, &err), ANC_OK, "encode: %s",
	    err.msg);
	cr_assert_eq(anc_req_decode(buf->data, buf->len, &g_lim, &out, &id,
	    &err), ANC_OK, "decode: %s", err.msg);
	cr_assert_eq(id, req->id);
	cr_assert_eq(out->id, req->id);
	cr_assert_eq(out->op, req->op);
	return out;
}

static anc_resp *
resp_roundtrip(const anc_resp *resp, anc_buf *buf)
{
	anc_error err;
	anc_resp *out = NULL;
	anc_buf_reset(buf);
	cr_assert_eq(anc_resp_encode(resp, buf, &err), ANC_OK, "encode: %s",
	    err.msg);
	cr_assert_eq(anc_resp_decode(buf->data, buf->len, resp->op, &g_lim,
	    &out, &err), ANC_OK, "decode: %s", err.msg);
	cr_assert_eq(out->id, resp->id);
	cr_assert_eq(out->op, resp->op);
	cr_assert_eq(out->code, 0);
	cr_assert_null(out->message);
	return out;
}

/* ---- names and limits ---------------------------------------------------- */

Test(proto, op_names)
{
	for (int i = 0; i < ANC_OP__COUNT; i++)
		cr_expect_eq(anc_op_parse(anc_op_name((anc_op)i)), i);
	cr_expect_str_eq(anc_op_name(ANC_OP_COLLECTION_CREATE),
	    "collection_create");
	cr_expect_eq(anc_op_parse("PING"), -1);
	cr_expect_eq(anc_op_parse(NULL), -1);
	cr_expect_str_eq(anc_op_name((anc_op)99), "unknown");
}

Test(proto, limits_default_and_zero_refused)
{
	anc_limits l;
	anc_error err;
	anc_req *req = NULL;
	anc_limits_default(&l);
	cr_expect_eq(l.max_message, 64u << 20);
	cr_expect_eq(l.max_records, 10000);
	cr_expect_eq(l.max_queries, 1024);
	cr_expect_eq(l.max_k, 1000);
	cr_expect_eq(l.max_text, 1u << 20);
	cr_expect_eq(l.max_meta, 64u << 10);
	cr_expect_eq(l.max_anchors, 10000);
	cr_expect_eq(l.max_hits, 1u << 20);
	l.max_k = 0;
	uint8_t msg[] = { 0x80 };
	cr_expect_eq(anc_req_decode(msg, 1, &l, &req, NULL, &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "limits.max_k") != NULL, "%s", err.msg);
	cr_expect_null(req);
}

/* ---- request round trips --------------------------------------------------- */

Test(proto, req_roundtrip_ping_info)
{
	anc_buf buf;
	anc_req req;
	req_start(&req, &buf, 1, ANC_OP_PING);
	anc_req *out = req_roundtrip(&req, &buf);
	anc_req_free(out);
	req.op = ANC_OP_INFO;
	req.id = UINT64_MAX;
	out = req_roundtrip(&req, &buf);
	anc_req_free(out);
	anc_buf_free(&buf);
	/* A body may be left out for ping and info only. */
	EXPECT_REQ("{\"v\":1,\"op\":\"ping\",\"id\":3}", ANC_OK, NULL);
	EXPECT_REQ("{\"v\":1,\"op\":\"info\",\"id\":3}", ANC_OK, NULL);
	EXPECT_REQ("{\"v\":1,\"op\":\"resolve\",\"id\":3}", ANC_EMALFORMED,
	    "body: required field missing");
}

Test(proto, req_roundtrip_collection_create)
{
	anc_buf buf;
	anc_req req;
	req_start(&req, &buf, 77, ANC_OP_COLLECTION_CREATE);
	req.u.collection_create.name = "docs.v2";
	anc_req *out = req_roundtrip(&req, &buf);
	cr_expect_str_eq(out->u.collection_create.name, "docs.v2");
	anc_req_free(out);
	anc_buf_free(&buf);
}

Test(proto, req_roundtrip_contract_register)
{
	anc_buf buf;
	anc_req req;
	req_start(&req, &buf, 5, ANC_OP_CONTRACT_REGISTER);
	req.u.contract_register.collection = "docs";
	req.u.contract_register.contract = sample_contract();
	anc_req *out = req_roundtrip(&req, &buf);
	const anc_contract *c = &out->u.contract_register.contract;
	cr_expect_str_eq(out->u.contract_register.collection, "docs");
	cr_expect_eq(memcmp(c, &req.u.contract_register.contract,
	    sizeof(*c)), 0, "contract differs after round trip");
	anc_req_free(out);

	/* Flat, no preprocess: index section and optional fields default. */
	EXPECT_REQ("{\"v\":1,\"op\":\"contract_register\",\"id\":1,\"body\":"
	    "{\"collection\":\"docs\",\"contract\":{\"name\":\"n\","
	    "\"model\":\"m\",\"revision\":\"r\",\"dim\":4,\"metric\":\"l2\","
	    "\"normalize\":false}}}", ANC_OK, NULL);
	msgpack_sbuffer sb;
	anc_error err;
	mp_from_json("{\"v\":1,\"op\":\"contract_register\",\"id\":1,\"body\":"
	    "{\"collection\":\"docs\",\"contract\":{\"name\":\"n\","
	    "\"model\":\"m\",\"revision\":\"r\",\"dim\":4,\"metric\":\"l2\","
	    "\"normalize\":false,\"index\":{\"kind\":\"hnsw\",\"m\":8}}}}", &sb);
	cr_assert_eq(anc_req_decode(sb.data, sb.size, &g_lim, &out, NULL,
	    &err), ANC_OK, "%s", err.msg);
	c = &out->u.contract_register.contract;
	cr_expect_eq(c->metric, ANC_METRIC_L2);
	cr_expect_eq(c->normalize, 0);
	cr_expect_str_eq(c->preprocess, "");
	cr_expect_eq(c->index.kind, ANC_INDEX_HNSW);
	cr_expect_eq(c->index.m, 8);
	cr_expect_eq(c->index.ef_search, 0, "left for anc_contract_validate");
	anc_req_free(out);
	msgpack_sbuffer_destroy(&sb);
	anc_buf_free(&buf);
}

Test(proto, req_roundtrip_upsert)
{
	anc_buf buf;
	anc_req req;
	msgpack_sbuffer meta;
	msgpack_packer pk;
	float v0[3] = { 1.0f, -2.5f, 3.25e-8f }, v1[3] = { 0.0f, -0.0f, 1e30f };

	msgpack_sbuffer_init(&meta);
	msgpack_packer_init(&pk, &meta, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "lang", 4);
	msgpack_pack_str_with_body(&pk, "en", 2);
	msgpack_pack_str_with_body(&pk, "tags", 4);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, -3);
	msgpack_pack_double(&pk, 0.5);

	anc_record recs[2] = {
		{ .source = "doc/1", .chunk = "0", .text = "hello world",
		  .meta = (const uint8_t *)meta.data,
		  .meta_len = (uint32_t)meta.size, .vec = v0, .dim = 3 },
		{ .source = "doc/2", .chunk = "", .text = NULL, .meta = NULL,
		  .vec = v1, .dim = 3 },
	};
	req_start(&req, &buf, 9, ANC_OP_UPSERT);
	req.u.upsert.collection = "docs";
	req.u.upsert.contract = "minilm@r1";
	req.u.upsert.records = recs;
	req.u.upsert.nrecords = 2;
	anc_req *out = req_roundtrip(&req, &buf);
	const anc_req_upsert *u = &out->u.upsert;
	cr_assert_eq(u->nrecords, 2);
	cr_expect_str_eq(u->collection, "docs");
	cr_expect_str_eq(u->contract, "minilm@r1");
	cr_expect_str_eq(u->records[0].source, "doc/1");
	cr_expect_str_eq(u->records[0].chunk, "0");
	cr_expect_str_eq(u->records[0].text, "hello world");
	cr_assert_eq(u->records[0].meta_len, meta.size);
	cr_expect_eq(memcmp(u->records[0].meta, meta.data, meta.size), 0);
	cr_expect_eq(u->records[0].dim, 3);
	cr_expect_eq(((uintptr_t)u->records[0].vec) % 16, 0, "aligned");
	cr_expect_eq(memcmp(u->records[0].vec, v0, sizeof(v0)), 0);
	cr_expect_str_eq(u->records[1].chunk, "");
	cr_expect_null(u->records[1].text);
	cr_expect_null(u->records[1].meta);
	cr_expect_eq(u->records[1].meta_len, 0);
	cr_expect_eq(memcmp(u->records[1].vec, v1, sizeof(v1)), 0);
	anc_req_free(out);
	anc_buf_free(&buf);
	msgpack_sbuffer_destroy(&meta);
}

/* An upsert request of the one record rec into docs under m@1. */
static void
upsert_one(anc_req *req, uint64_t id, anc_record *rec)
{
	memset(req, 0, sizeof *req);
	req->id = id;
	req->op = ANC_OP_UPSERT;
	req->u.upsert.collection = "docs";
	req->u.upsert.contract = "m@1";
	req->u.upsert.records = rec;
	req->u.upsert.nrecords = 1;
}

/* Text and keys are UTF-8: stray, overlong, surrogate and cut sequences
 * are refused naming the field, the byte and its offset; real multi-byte
 * text passes. */
Test(proto, upsert_text_and_keys_must_be_utf8)
{
	static const char *const bad[] = {"ab\xff", "ab\xc0\xaf",
	                                  "ab\xed\xa0\x80", "ab\xe2\x82"};
	static const char *const field[] = {"source", "chunk", "text"};
	float v[3] = {1, 2, 3};
	anc_buf buf;
	anc_req req;
	anc_req *out = NULL;
	anc_error err;
	uint64_t id;

	anc_buf_init(&buf);
	for (int f = 0; f < 3; f++)
		for (int b = 0; b < 4; b++) {
			anc_record rec = {.source = "s", .chunk = "c",
			                  .text = "t", .vec = v, .dim = 3};
			char want[96];
			if (f == 0)
				rec.source = bad[b];
			else if (f == 1)
				rec.chunk = bad[b];
			else
				rec.text = bad[b];
			upsert_one(&req, 5, &rec);
			anc_buf_reset(&buf);
			cr_assert_eq(anc_req_encode(&req, &buf, &err), ANC_OK,
			             "%s", err.msg);
			cr_assert_eq(anc_req_decode(buf.data, buf.len, &g_lim,
			                            &out, &id, &err), ANC_EINVAL,
			             "%s %d", field[f], b);
			cr_assert_null(out);
			snprintf(want, sizeof want, "body.records[0].%s: not "
			         "UTF-8 (byte 0x%02x at offset 2)", field[f],
			         (unsigned char)bad[b][2]);
			cr_assert(strstr(err.msg, want) != NULL, "%s", err.msg);
		}
	anc_record ok = {.source = "d\xc3\xa9j\xc3\xa0", .chunk = "\xe2\x82\xac",
	                 .text = "h\xc3\xa9llo \xf0\x9f\x98\x80", .vec = v,
	                 .dim = 3};
	upsert_one(&req, 6, &ok);
	out = req_roundtrip(&req, &buf);
	cr_assert_str_eq(out->u.upsert.records[0].text, ok.text);
	anc_req_free(out);
	anc_buf_free(&buf);
}

Test(proto, req_roundtrip_query)
{
	anc_buf buf;
	anc_req req;
	float vecs[6] = { 1, 2, 3, 4, 5, 6 };
	req_start(&req, &buf, 10, ANC_OP_QUERY);
	req.u.query.collection = "docs";
	req.u.query.contract = "0123456789abcdef";
	req.u.query.vectors = vecs;
	req.u.query.nq = 2;
	req.u.query.dim = 3;
	req.u.query.k = 7;
	req.u.query.with_text = 1;
	req.u.query.with_meta = 1;
	anc_anchor_str pins[2];
	anchor_of("p", "1", pins[0]);
	anchor_of("p", "2", pins[1]);
	req.u.query.pins = pins;
	req.u.query.npins = 2;
	anc_req *out = req_roundtrip(&req, &buf);
	const anc_req_query *q = &out->u.query;
	cr_expect_eq(q->with_meta, 1);
	cr_assert_eq(q->npins, 2);
	cr_expect_str_eq(q->pins[0], pins[0]);
	cr_expect_str_eq(q->pins[1], pins[1]);
	cr_expect_str_eq(q->contract, "0123456789abcdef");
	cr_expect_eq(q->nq, 2);
	cr_expect_eq(q->dim, 3);
	cr_expect_eq(q->k, 7);
	cr_expect_eq(q->with_text, 1);
	cr_expect_eq(memcmp(q->vectors, vecs, sizeof(vecs)), 0);
	cr_expect_eq(((uintptr_t)q->vectors) % 16, 0);
	anc_req_free(out);

	/* a malformed pin is refused naming it */
	{
		anc_error e = {0};
		anc_anchor_str badp[1] = {"zzzzzzzzzzzzzzzzzzzzzzzzzz"};
		badp[0][25] = '1'; /* '1' is not in the alphabet */
		req.u.query.pins = badp;
		req.u.query.npins = 1;
		cr_expect_neq(anc_req_encode(&req, &buf, &e), ANC_OK);
		cr_expect(strstr(e.msg, "body.pins[0]") != NULL, "%s", e.msg);
	}
	req.u.query.pins = NULL;
	req.u.query.npins = 0;
	/* k 0 and no contract: left out, decoded as the defaults. */
	req.u.query.k = 0;
	req.u.query.contract = NULL;
	req.u.query.with_text = 0;
	req.u.query.with_meta = 0;
	out = req_roundtrip(&req, &buf);
	cr_expect_eq(out->u.query.with_meta, 0);
	cr_expect_eq(out->u.query.k, 10);
	cr_expect_str_eq(out->u.query.contract, "");
	cr_expect_eq(out->u.query.with_text, 0);
	anc_req_free(out);
	anc_buf_free(&buf);
}

Test(proto, req_roundtrip_resolve_delete)
{
	anc_buf buf;
	anc_req req;
	anc_anchor_str a[3];
	anchor_of("x", "1", a[0]);
	anchor_of("x", "2", a[1]);
	anchor_of("y", "", a[2]);
	anc_buf_init(&buf);
	for (int pass = 0; pass < 2; pass++) {
		memset(&req, 0, sizeof(req));
		req.id = 11;
		req.op = pass ? ANC_OP_DELETE : ANC_OP_RESOLVE;
		anc_req_anchors *ra = pass ? &req.u.del : &req.u.resolve;
		ra->collection = "docs";
		ra->anchors = a;
		ra->nanchors = 3;
		anc_req *out = req_roundtrip(&req, &buf);
		const anc_req_anchors *oa = pass ? &out->u.del : &out->u.resolve;
		cr_expect_str_eq(oa->collection, "docs");
		cr_assert_eq(oa->nanchors, 3);
		for (int i = 0; i < 3; i++)
			cr_expect_str_eq(oa->anchors[i], a[i]);
		anc_req_free(out);
	}
	anc_buf_free(&buf);
}

Test(proto, vectors_are_little_endian_on_the_wire)
{
	anc_buf buf;
	anc_req req;
	float v[1] = { 1.0f }; /* 0x3f800000 */
	const uint8_t le[4] = { 0x00, 0x00, 0x80, 0x3f };
	anc_error err;
	anc_buf_init(&buf);
	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_QUERY;
	req.u.query.collection = "docs";
	req.u.query.vectors = v;
	req.u.query.nq = 1;
	req.u.query.dim = 1;
	cr_assert_eq(anc_req_encode(&req, &buf, &err), ANC_OK);
	int found = 0;
	for (size_t i = 0; i + 6 <= buf.len; i++)
		if (buf.data[i] == 0xc4 && buf.data[i + 1] == 4 &&
		    memcmp(buf.data + i + 2, le, 4) == 0)
			found = 1;
	cr_expect(found, "bin8 of 4 little-endian bytes not found");
	anc_buf_free(&buf);
	/* And a hand-made odd-offset bin decodes to the right value. */
	msgpack_sbuffer sb;
	anc_req *out;
	mp_from_json("{\"v\":1,\"op\":\"query\",\"id\":1,\"body\":{\"collection\""
	    ":\"d\",\"vectors\":[\"#x:0000803f000000c0\"]}}", &sb);
	cr_assert_eq(anc_req_decode(sb.data, sb.size, &g_lim, &out, NULL,
	    &err), ANC_OK, "%s", err.msg);
	cr_expect_float_eq(out->u.query.vectors[0], 1.0f, 0);
	cr_expect_float_eq(out->u.query.vectors[1], -2.0f, 0);
	anc_req_free(out);
	msgpack_sbuffer_destroy(&sb);
}

/* ---- response round trips ---------------------------------------------------- */

Test(proto, resp_roundtrip_ping_create_register)
{
	anc_buf buf;
	anc_resp r;
	resp_start(&r, &buf, 4, ANC_OP_PING);
	strcpy(r.u.ping.version, "0.1.0");
	anc_resp *out = resp_roundtrip(&r, &buf);
	cr_expect_str_eq(out->u.ping.version, "0.1.0");
	anc_resp_free(out);

	memset(&r, 0, sizeof(r));
	r.op = ANC_OP_COLLECTION_CREATE;
	r.u.collection_create.created = 1;
	out = resp_roundtrip(&r, &buf);
	cr_expect_eq(out->u.collection_create.created, 1);
	anc_resp_free(out);

	memset(&r, 0, sizeof(r));
	r.op = ANC_OP_CONTRACT_REGISTER;
	strcpy(r.u.contract_register.id, "00ff00ff00ff00ff");
	r.u.contract_register.created = 0;
	out = resp_roundtrip(&r, &buf);
	cr_expect_str_eq(out->u.contract_register.id, "00ff00ff00ff00ff");
	cr_expect_eq(out->u.contract_register.created, 0);
	anc_resp_free(out);
	anc_buf_free(&buf);
}

Test(proto, resp_roundtrip_info)
{
	anc_buf buf;
	anc_resp r;
	anc_contract_info ci[2];
	anc_collection_info co[2];
	resp_start(&r, &buf, 8, ANC_OP_INFO);
	memset(ci, 0, sizeof(ci));
	memset(co, 0, sizeof(co));
	ci[0].contract = sample_contract();
	strcpy(ci[0].id, "0123456789abcdef");
	ci[0].state = ANC_CSTATE_DEFAULT;
	ci[0].vectors = 90;
	ci[0].index_ntotal = 95;
	ci[1].contract = sample_contract();
	ci[1].contract.index.kind = ANC_INDEX_FLAT;
	ci[1].contract.index.m = 0;
	ci[1].contract.index.ef_construction = 0;
	ci[1].contract.index.ef_search = 0;
	strcpy(ci[1].id, "fedcba9876543210");
	ci[1].state = ANC_CSTATE_RETIRED;
	strcpy(co[0].name, "docs");
	co[0].live = 90;
	co[0].deleted = 3;
	strcpy(co[0].default_contract, "0123456789abcdef");
	co[0].contracts = ci;
	co[0].ncontracts = 2;
	strcpy(co[1].name, "empty");
	strcpy(r.u.info.version, "0.1.0");
	r.u.info.seq = 1234567890123ull;
	r.u.info.collections = co;
	r.u.info.ncollections = 2;
	anc_resp *out = resp_roundtrip(&r, &buf);
	const anc_info *in = &out->u.info;
	cr_expect_str_eq(in->version, "0.1.0");
	cr_expect_eq(in->seq, 1234567890123ull);
	cr_assert_eq(in->ncollections, 2);
	cr_expect_str_eq(in->collections[0].name, "docs");
	cr_expect_eq(in->collections[0].live, 90);
	cr_expect_eq(in->collections[0].deleted, 3);
	cr_expect_str_eq(in->collections[0].default_contract,
	    "0123456789abcdef");
	cr_assert_eq(in->collections[0].ncontracts, 2);
	for (int i = 0; i < 2; i++) {
		const anc_contract_info *g = &in->collections[0].contracts[i];
		cr_expect_str_eq(g->id, ci[i].id);
		cr_expect_eq(g->state, ci[i].state);
		cr_expect_eq(g->vectors, ci[i].vectors);
		cr_expect_eq(g->index_ntotal, ci[i].index_ntotal);
		cr_expect_eq(memcmp(&g->contract, &ci[i].contract,
		    sizeof(anc_contract)), 0, "contract %d", i);
	}
	cr_expect_str_eq(in->collections[1].name, "empty");
	cr_expect_str_eq(in->collections[1].default_contract, "");
	cr_expect_eq(in->collections[1].ncontracts, 0);
	anc_resp_free(out);
	anc_buf_free(&buf);
}

Test(proto, resp_roundtrip_upsert_delete)
{
	anc_buf buf;
	anc_resp r;
	anc_upsert_result ur[3];
	anc_delete_result dr[3];
	anc_buf_init(&buf);
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < 3; i++) {
		anchor_of("u", i == 0 ? "a" : i == 1 ? "b" : "c", ur[i].anchor);
		ur[i].revision = (uint64_t)i + 1;
		ur[i].status = i;
		memcpy(dr[i].anchor, ur[i].anchor, sizeof(dr[i].anchor));
		dr[i].revision = 40 + (uint64_t)i;
		dr[i].status = i;
	}
	r.op = ANC_OP_UPSERT;
	r.u.upsert.results = ur;
	r.u.upsert.n = 3;
	r.u.upsert.seq = 99;
	anc_resp *out = resp_roundtrip(&r, &buf);
	cr_assert_eq(out->u.upsert.n, 3);
	cr_expect_eq(out->u.upsert.seq, 99);
	for (int i = 0; i < 3; i++) {
		cr_expect_str_eq(out->u.upsert.results[i].anchor, ur[i].anchor);
		cr_expect_eq(out->u.upsert.results[i].revision, ur[i].revision);
		cr_expect_eq(out->u.upsert.results[i].status, i);
	}
	anc_resp_free(out);

	memset(&r, 0, sizeof(r));
	r.op = ANC_OP_DELETE;
	r.u.del.results = dr;
	r.u.del.n = 3;
	r.u.del.seq = 100;
	out = resp_roundtrip(&r, &buf);
	cr_assert_eq(out->u.del.n, 3);
	cr_expect_eq(out->u.del.seq, 100);
	for (int i = 0; i < 3; i++) {
		cr_expect_str_eq(out->u.del.results[i].anchor, dr[i].anchor);
		cr_expect_eq(out->u.del.results[i].revision, dr[i].revision);
		cr_expect_eq(out->u.del.results[i].status, i);
	}
	anc_resp_free(out);
	anc_buf_free(&buf);
}

Test(proto, resp_roundtrip_query)
{
	anc_buf buf;
	anc_resp r;
	anc_hit hits[2];
	anc_hitlist lists[2];
	resp_start(&r, &buf, 12, ANC_OP_QUERY);
	memset(hits, 0, sizeof(hits));
	anchor_of("q", "1", hits[0].anchor);
	hits[0].score = 0.875f;
	hits[0].revision = 2;
	hits[0].source = "doc/1";
	hits[0].chunk = "0";
	hits[0].text = "the text";
	static uint8_t meta[] = { 0x81, 0xa4, 'p', 'a', 'g', 'e', 0x07 };
	hits[0].meta = meta; /* {"page": 7} */
	hits[0].meta_len = sizeof(meta);
	anchor_of("q", "2", hits[1].anchor);
	hits[1].score = -1.5f;
	hits[1].revision = 1;
	hits[1].source = "doc/2";
	hits[1].chunk = "";
	lists[0].hits = hits;
	lists[0].nhits = 2;
	lists[1].hits = NULL;
	lists[1].nhits = 0;
	/* the first scored by drift, the second not (NaN: sent as neither
	 * field, read back as NaN) */
	lists[0].drift_flag = 1;
	lists[0].drift_score = 1.25f;
	lists[0].confidence = ANC_CONF_STRONG;
	lists[1].drift_flag = 0;
	lists[1].drift_score = NAN;
	lists[1].confidence = ANC_CONF_UNKNOWN;
	r.u.query.lists = lists;
	r.u.query.nq = 2;
	anc_resolved pinned[2];
	memset(pinned, 0, sizeof pinned);
	anchor_of("q", "9", pinned[0].anchor);
	pinned[0].status = ANC_ANCHOR_LIVE;
	pinned[0].revision = 4;
	pinned[0].source = "doc/9";
	pinned[0].chunk = "";
	pinned[0].text = "pinned text";
	anchor_of("q", "8", pinned[1].anchor);
	pinned[1].status = ANC_ANCHOR_UNKNOWN;
	r.u.query.pinned = pinned;
	r.u.query.npinned = 2;
	strcpy(r.u.query.prov.contract, "0123456789abcdef");
	r.u.query.prov.index = ANC_INDEX_HNSW;
	r.u.query.prov.exact = 0;
	r.u.query.prov.ef_search = 64;
	r.u.query.prov.seq = 77;
	r.u.query.prov.generation = 3;
	anc_resp *out = resp_roundtrip(&r, &buf);
	cr_assert_eq(out->u.query.nq, 2);
	cr_assert_eq(out->u.query.lists[0].nhits, 2);
	cr_expect_eq(out->u.query.lists[1].nhits, 0);
	cr_expect_eq(out->u.query.lists[0].drift_flag, 1);
	cr_expect_float_eq(out->u.query.lists[0].drift_score, 1.25f, 0);
	cr_expect_eq(out->u.query.lists[1].drift_flag, 0);
	cr_assert_eq(out->u.query.npinned, 2);
	cr_expect_str_eq(out->u.query.pinned[0].anchor, pinned[0].anchor);
	cr_expect_eq(out->u.query.pinned[0].status, ANC_ANCHOR_LIVE);
	cr_expect_eq(out->u.query.pinned[0].revision, 4);
	cr_expect_str_eq(out->u.query.pinned[0].text, "pinned text");
	cr_expect_eq(out->u.query.pinned[1].status, ANC_ANCHOR_UNKNOWN);
	cr_expect(isnan(out->u.query.lists[1].drift_score), "%g",
	          out->u.query.lists[1].drift_score);
	{
		/* one drift_score on the wire: the scored query's */
		size_t count = 0;
		for (size_t i = 0; i + 11 <= buf.len; i++)
			count += memcmp(buf.data + i, "drift_score", 11) == 0;
		cr_expect_eq(count, 1, "%zu drift_score keys", count);
	}
	const anc_hit *h = out->u.query.lists[0].hits;
	cr_expect_str_eq(h[0].anchor, hits[0].anchor);
	cr_expect_float_eq(h[0].score, 0.875f, 0);
	cr_expect_eq(h[0].revision, 2);
	cr_expect_str_eq(h[0].source, "doc/1");
	cr_expect_str_eq(h[0].chunk, "0");
	cr_expect_str_eq(h[0].text, "the text");
	cr_assert_eq(h[0].meta_len, sizeof(meta));
	cr_expect_eq(memcmp(h[0].meta, meta, sizeof(meta)), 0);
	cr_expect_null(h[1].meta);
	cr_expect_float_eq(h[1].score, -1.5f, 0);
	cr_expect_str_eq(h[1].chunk, "");
	cr_expect_null(h[1].text);
	const anc_provenance *p = &out->u.query.prov;
	cr_expect_str_eq(p->contract, "0123456789abcdef");
	cr_expect_eq(p->index, ANC_INDEX_HNSW);
	cr_expect_eq(p->exact, 0);
	cr_expect_eq(p->ef_search, 64);
	cr_expect_eq(p->seq, 77);
	cr_expect_eq(p->generation, 3);
	/* no metric said (an older server): none read, no "metric" key */
	cr_expect_eq(p->has_metric, 0);
	{
		size_t count = 0;
		for (size_t i = 0; i + 8 <= buf.len; i++)
			count += memcmp(buf.data + i, "\xa6metric", 7) == 0;
		cr_expect_eq(count, 0, "%zu metric keys", count);
	}
	anc_resp_free(out);
	/* said: read back, for each metric */
	for (int m = ANC_METRIC_L2; m <= ANC_METRIC_COSINE; m++) {
		r.u.query.prov.has_metric = 1;
		r.u.query.prov.metric = (anc_metric)m;
		out = resp_roundtrip(&r, &buf);
		cr_expect_eq(out->u.query.prov.has_metric, 1);
		cr_expect_eq(out->u.query.prov.metric, m);
		anc_resp_free(out);
	}
	/* an unknown metric name is MALFORMED, naming the key */
	{
		anc_error err;
		anc_resp *bad = NULL;
		uint8_t *at = NULL;
		anc_buf_reset(&buf);
		r.u.query.prov.metric = ANC_METRIC_COSINE;
		cr_assert_eq(anc_resp_encode(&r, &buf, &err), ANC_OK);
		for (size_t i = 0; i + 14 <= buf.len && at == NULL; i++)
			if (memcmp(buf.data + i, "\xa6" "metric" "\xa6" "cosine", 14) == 0)
				at = buf.data + i + 8;
		cr_assert_not_null(at);
		memcpy(at, "cosinf", 6);
		cr_expect_eq(anc_resp_decode(buf.data, buf.len, ANC_OP_QUERY,
		                             &g_lim, &bad, &err), ANC_EMALFORMED);
		cr_expect(strstr(err.msg, "body.provenance.metric: unknown value "
		                 "'cosinf'") != NULL, "%s", err.msg);
		cr_expect_null(bad);
	}
	anc_buf_free(&buf);
}

Test(proto, resp_roundtrip_resolve)
{
	anc_buf buf;
	anc_resp r;
	anc_resolved x[3];
	uint8_t meta[] = { 0x81, 0xa1, 'k', 0x01 }; /* {"k":1} */
	anc_buf_init(&buf);
	memset(&r, 0, sizeof(r));
	memset(x, 0, sizeof(x));
	anchor_of("r", "1", x[0].anchor);
	x[0].status = ANC_ANCHOR_LIVE;
	x[0].revision = 3;
	x[0].source = "doc/1";
	x[0].chunk = "1";
	x[0].text = "live text";
	x[0].meta = meta;
	x[0].meta_len = sizeof(meta);
	cr_assert_eq(anc_hash_hex16("live text", 9, x[0].hash), ANC_OK);
	anchor_of("r", "2", x[1].anchor);
	x[1].status = ANC_ANCHOR_DELETED;
	x[1].revision = 5;
	x[1].source = "doc/2";
	x[1].chunk = "2";
	anchor_of("r", "3", x[2].anchor);
	x[2].status = ANC_ANCHOR_UNKNOWN;
	r.op = ANC_OP_RESOLVE;
	r.u.resolve.results = x;
	r.u.resolve.n = 3;
	anc_resp *out = resp_roundtrip(&r, &buf);
	cr_assert_eq(out->u.resolve.n, 3);
	const anc_resolved *g = out->u.resolve.results;
	cr_expect_eq(g[0].status, ANC_ANCHOR_LIVE);
	cr_expect_eq(g[0].revision, 3);
	cr_expect_str_eq(g[0].text, "live text");
	cr_assert_eq(g[0].meta_len, sizeof(meta));
	cr_expect_eq(memcmp(g[0].meta, meta, sizeof(meta)), 0);
	cr_expect_str_eq(g[0].hash, x[0].hash);
	cr_expect_eq(g[1].status, ANC_ANCHOR_DELETED);
	cr_expect_eq(g[1].revision, 5);
	cr_expect_str_eq(g[1].source, "doc/2");
	cr_expect_null(g[1].text);
	cr_expect_null(g[1].meta);
	cr_expect_str_eq(g[1].hash, "");
	cr_expect_eq(g[2].status, ANC_ANCHOR_UNKNOWN);
	cr_expect_str_eq(g[2].anchor, x[2].anchor);
	cr_expect_null(g[2].source);
	anc_resp_free(out);
	anc_buf_free(&buf);
}

Test(proto, resp_error_roundtrip)
{
	anc_buf buf;
	anc_error e, err;
	anc_resp *out;
	anc_buf_init(&buf);
	anc_error_set(&e, ANC_EDIM, "body.vectors[3]: 380 floats, vectors[0] "
	    "has 384");
	cr_assert_eq(anc_resp_encode_error(42, &e, &buf), ANC_OK);
	for (int op = 0; op < ANC_OP__COUNT; op++) {
		cr_assert_eq(anc_resp_decode(buf.data, buf.len, (anc_op)op,
		    &g_lim, &out, &err), ANC_OK, "%s", err.msg);
		cr_expect_eq(out->id, 42);
		cr_expect_eq(out->code, ANC_EDIM);
		cr_expect_str_eq(out->message, e.msg);
		anc_resp_free(out);
	}
	/* Code 0 or NULL is turned into INTERNAL, never ok:false code 0. */
	anc_buf_reset(&buf);
	anc_error_clear(&e);
	cr_assert_eq(anc_resp_encode_error(1, &e, &buf), ANC_OK);
	cr_assert_eq(anc_resp_decode(buf.data, buf.len, ANC_OP_PING, &g_lim,
	    &out, &err), ANC_OK);
	cr_expect_eq(out->code, ANC_EINTERNAL);
	anc_resp_free(out);
	anc_buf_reset(&buf);
	cr_assert_eq(anc_resp_encode_error(2, NULL, &buf), ANC_OK);
	cr_assert_eq(anc_resp_decode(buf.data, buf.len, ANC_OP_PING, &g_lim,
	    &out, &err), ANC_OK);
	cr_expect_eq(out->code, ANC_EINTERNAL);
	anc_resp_free(out);
	anc_buf_free(&buf);
	/* The wire form carries the name too. */
	EXPECT_RESP("{\"v\":1,\"id\":0,\"ok\":false,\"error\":{\"code\":2,"
	    "\"name\":\"MALFORMED\",\"message\":\"x\"}}", ANC_OP_QUERY, ANC_OK,
	    NULL);
	EXPECT_RESP("{\"v\":1,\"id\":0,\"ok\":false,\"error\":{\"code\":0,"
	    "\"message\":\"x\"}}", ANC_OP_QUERY, ANC_EMALFORMED, "error.code");
	EXPECT_RESP("{\"v\":1,\"id\":0,\"ok\":false,\"error\":{\"code\":-2,"
	    "\"message\":\"x\"}}", ANC_OP_QUERY, ANC_EINVAL, "error.code");
	EXPECT_RESP("{\"v\":1,\"id\":0,\"ok\":false,\"error\":{\"code\":2}}",
	    ANC_OP_QUERY, ANC_EMALFORMED, "error.message: required");
	EXPECT_RESP("{\"v\":1,\"id\":0,\"ok\":false}", ANC_OP_QUERY,
	    ANC_EMALFORMED, "error: required");
	EXPECT_RESP("{\"v\":1,\"id\":0,\"ok\":1,\"body\":{}}", ANC_OP_PING,
	    ANC_EMALFORMED, "ok: expected bool, got int");
	EXPECT_RESP("{\"v\":1,\"id\":0,\"body\":{}}", ANC_OP_PING,
	    ANC_EMALFORMED, "ok: required");
	EXPECT_RESP("{\"v\":2,\"id\":0,\"ok\":true,\"body\":{}}", ANC_OP_PING,
	    ANC_EUNSUPPORTED, "version 2");
}

/* ---- a catalogue of valid messages, for the prefix and fuzz tests -------- */

/* The catalogue covers the ops of the first protocol release (ping ..
 * delete); ops added later bring their own round-trip tests, and can join
 * the catalogue by raising MSG_NOPS and adding a case below. */
#define MSG_NOPS (ANC_OP_DELETE + 1)

typedef struct msgset {
	anc_buf req[MSG_NOPS];
	anc_buf resp[MSG_NOPS];
	anc_buf err;
} msgset;

static void
msgset_build(msgset *m)
{
	static float vecs[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static anc_anchor_str an[2];
	static uint8_t meta[] = { 0x82, 0xa1, 'a', 0x91, 0x01, 0xa1, 'b', 0xc0 };
	anc_record recs[2] = {
		{ .source = "s1", .chunk = "c", .text = "t", .meta = meta,
		  .meta_len = sizeof(meta), .vec = vecs, .dim = 4 },
		{ .source = "s2", .chunk = "", .vec = vecs + 4, .dim = 4 },
	};
	anc_error err;
	anchor_of("m", "1", an[0]);
	anchor_of("m", "2", an[1]);
	for (int op = 0; op < MSG_NOPS; op++) {
		anc_req q;
		anc_resp r;
		memset(&q, 0, sizeof(q));
		memset(&r, 0, sizeof(r));
		q.op = r.op = (anc_op)op;
		q.id = r.id = 1000 + (uint64_t)op;
		switch (op) {
		case ANC_OP_PING:
			strcpy(r.u.ping.version, "0.1.0");
			break;
		case ANC_OP_INFO: {
			static anc_contract_info ci;
			static anc_collection_info co;
			ci.contract = sample_contract();
			strcpy(ci.id, "0123456789abcdef");
			strcpy(co.name, "docs");
			strcpy(co.default_contract, "0123456789abcdef");
			co.contracts = &ci;
			co.ncontracts = 1;
			strcpy(r.u.info.version, "0.1.0");
			r.u.info.collections = &co;
			r.u.info.ncollections = 1;
			break;
		}
		case ANC_OP_COLLECTION_CREATE:
			q.u.collection_create.name = "docs";
			r.u.collection_create.created = 1;
			break;
		case ANC_OP_CONTRACT_REGISTER:
			q.u.contract_register.collection = "docs";
			q.u.contract_register.contract = sample_contract();
			strcpy(r.u.contract_register.id, "0123456789abcdef");
			break;
		case ANC_OP_UPSERT: {
			static anc_upsert_result ur[2];
			q.u.upsert.collection = "docs";
			q.u.upsert.contract = "minilm@r1";
			q.u.upsert.records = recs;
			q.u.upsert.nrecords = 2;
			memcpy(ur[0].anchor, an[0], sizeof(an[0]));
			memcpy(ur[1].anchor, an[1], sizeof(an[1]));
			ur[1].status = ANC_UPSERT_UPDATED;
			r.u.upsert.results = ur;
			r.u.upsert.n = 2;
			break;
		}
		case ANC_OP_QUERY: {
			static anc_hit h[2];
			static anc_hitlist l[2];
			q.u.query.collection = "docs";
			q.u.query.contract = "minilm@r1";
			q.u.query.vectors = vecs;
			q.u.query.nq = 2;
			q.u.query.dim = 4;
			q.u.query.k = 3;
			memcpy(h[0].anchor, an[0], sizeof(an[0]));
			memcpy(h[1].anchor, an[1], sizeof(an[1]));
			h[0].source = h[1].source = "s";
			h[0].chunk = h[1].chunk = "c";
			h[0].text = "t";
			l[0].hits = h;
			l[0].nhits = 2;
			l[1].hits = h + 1;
			l[1].nhits = 1;
			r.u.query.lists = l;
			r.u.query.nq = 2;
			strcpy(r.u.query.prov.contract, "0123456789abcdef");
			break;
		}
		case ANC_OP_RESOLVE: {
			static anc_resolved x[2];
			q.u.resolve.collection = "docs";
			q.u.resolve.anchors = an;
			q.u.resolve.nanchors = 2;
			memcpy(x[0].anchor, an[0], sizeof(an[0]));
			x[0].source = "s";
			x[0].chunk = "c";
			x[0].text = "t";
			x[0].meta = meta;
			x[0].meta_len = sizeof(meta);
			strcpy(x[0].hash, "0123456789abcdef0123456789abcdef");
			memcpy(x[1].anchor, an[1], sizeof(an[1]));
			x[1].status = ANC_ANCHOR_UNKNOWN;
			r.u.resolve.results = x;
			r.u.resolve.n = 2;
			break;
		}
		case ANC_OP_DELETE: {
			static anc_delete_result x[2];
			q.u.del.collection = "docs";
			q.u.del.anchors = an;
			q.u.del.nanchors = 2;
			memcpy(x[0].anchor, an[0], sizeof(an[0]));
			memcpy(x[1].anchor, an[1], sizeof(an[1]));
			x[1].status = ANC_DELETE_ALREADY;
			r.u.del.results = x;
			r.u.del.n = 2;
			break;
		}
		}
		anc_buf_init(&m->req[op]);
		anc_buf_init(&m->resp[op]);
		cr_assert_eq(anc_req_encode(&q, &m->req[op], &err), ANC_OK,
		    "%s", err.msg);
		cr_assert_eq(anc_resp_encode(&r, &m->resp[op], &err), ANC_OK,
		    "%s", err.msg);
	}
	anc_buf_init(&m->err);
	anc_error_set(&err, ANC_ENOCOLL, "collection 'x': unknown");
	cr_assert_eq(anc_resp_encode_error(5, &err, &m->err), ANC_OK);
}

static void
msgset_free(msgset *m)
{
	for (int op = 0; op < MSG_NOPS; op++) {
		anc_buf_free(&m->req[op]);
		anc_buf_free(&m->resp[op]);
	}
	anc_buf_free(&m->err);
}

Test(proto, every_prefix_of_every_message_fails)
{
	msgset m;
	anc_error err;
	msgset_build(&m);
	for (int op = 0; op < MSG_NOPS; op++) {
		anc_req *req;
		anc_resp *resp;
		/* The full messages decode... */
		cr_assert_eq(anc_req_decode(m.req[op].data, m.req[op].len,
		    &g_lim, &req, NULL, &err), ANC_OK, "%s", err.msg);
		anc_req_free(req);
		cr_assert_eq(anc_resp_decode(m.resp[op].data, m.resp[op].len,
		    (anc_op)op, &g_lim, &resp, &err), ANC_OK, "%s: %s",
		    anc_op_name((anc_op)op), err.msg);
		anc_resp_free(resp);
		/* ...and no proper prefix does. */
		for (size_t n = 0; n < m.req[op].len; n++) {
			req = (anc_req *)1;
			int rv = anc_req_decode(m.req[op].data, n, &g_lim, &req,
			    NULL, &err);
			cr_assert_eq(rv, ANC_EMALFORMED, "%s prefix %zu: %d %s",
			    anc_op_name((anc_op)op), n, rv, err.msg);
			cr_assert_null(req);
		}
		for (size_t n = 0; n < m.resp[op].len; n++) {
			resp = (anc_resp *)1;
			int rv = anc_resp_decode(m.resp[op].data, n, (anc_op)op,
			    &g_lim, &resp, &err);
			cr_assert_eq(rv, ANC_EMALFORMED, "%s resp prefix %zu: %d",
			    anc_op_name((anc_op)op), n, rv);
			cr_assert_null(resp);
		}
	}
	for (size_t n = 0; n < m.err.len; n++) {
		anc_resp *resp;
		cr_assert_eq(anc_resp_decode(m.err.data, n, ANC_OP_PING, &g_lim,
		    &resp, &err), ANC_EMALFORMED);
	}
	msgset_free(&m);
}

/* A malloc'd copy of b with one more byte. */
static uint8_t *
with_byte(const anc_buf *b, uint8_t x)
{
	uint8_t *c = malloc(b->len + 1);
	cr_assert_not_null(c);
	memcpy(c, b->data, b->len);
	c[b->len] = x;
	return c;
}

Test(proto, trailing_bytes_refused)
{
	msgset m;
	anc_error err;
	anc_req *req;
	anc_resp *resp;
	uint64_t id = 0;
	msgset_build(&m);
	for (int op = 0; op < MSG_NOPS; op++) {
		uint8_t *c = with_byte(&m.req[op], 0xc0); /* nil */
		cr_expect_eq(anc_req_decode(c, m.req[op].len + 1, &g_lim, &req,
		    &id, &err), ANC_EMALFORMED);
		cr_expect(strstr(err.msg, "trailing") != NULL, "%s", err.msg);
		free(c);
		c = with_byte(&m.resp[op], 0x00);
		cr_expect_eq(anc_resp_decode(c, m.resp[op].len + 1, (anc_op)op,
		    &g_lim, &resp, &err), ANC_EMALFORMED);
		free(c);
	}
	/* Two maps back to back are not one message either. */
	uint8_t two[] = { 0x80, 0x80 };
	cr_expect_eq(anc_req_decode(two, 2, &g_lim, &req, NULL, &err),
	    ANC_EMALFORMED);
	msgset_free(&m);
}

/* ---- envelope ---------------------------------------------------------------- */

/* anc_req_decode_op says which operation a refused request named, once
 * the envelope got that far (the server's metrics count it there). */
Test(proto, decode_op_of_refused_requests)
{
	static const struct { const char *json; int op; } cases[] = {
		{"{\"v\":1,\"op\":\"query\",\"id\":3,\"body\":{\"k\":0}}",
		 ANC_OP_QUERY},
		{"{\"v\":1,\"op\":\"upsert\",\"id\":3,\"body\":{}}",
		 ANC_OP_UPSERT},
		{"{\"v\":1,\"op\":\"nosuchop\",\"id\":3,\"body\":{}}", -1},
		{"{\"v\":2,\"op\":\"query\",\"id\":3,\"body\":{}}", -1},
		{"[1]", -1}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		msgpack_sbuffer sb;
		anc_req *req = NULL;
		anc_error err;
		int op = 42;
		mp_from_json(cases[i].json, &sb);
		cr_expect_neq(anc_req_decode_op(sb.data, sb.size, &g_lim, &req,
		                  NULL, &op, &err), ANC_OK, "%s", cases[i].json);
		cr_expect_eq(op, cases[i].op, "%s: op %d", cases[i].json, op);
		msgpack_sbuffer_destroy(&sb);
	}
}

Test(proto, envelope_errors)
{
	anc_error err;
	anc_req *req = NULL;
	uint64_t id = 99;

	/* Not a map at all. */
	EXPECT_REQ("[1,2]", ANC_EMALFORMED, "message: expected map, got array");
	EXPECT_REQ("\"ping\"", ANC_EMALFORMED, "expected map, got str");
	cr_expect_eq(anc_req_decode("", 0, &g_lim, &req, &id, &err),
	    ANC_EMALFORMED);
	cr_expect_eq(id, 0, "id_out reset when the id was never read");
	cr_expect_eq(anc_req_decode(NULL, 0, &g_lim, &req, NULL, &err),
	    ANC_EMALFORMED);
	/* Reserved byte 0xc1. */
	uint8_t bad[] = { 0x81, 0xc1, 0x01 };
	cr_expect_eq(anc_req_decode(bad, sizeof(bad), &g_lim, &req, NULL,
	    &err), ANC_EMALFORMED);
	cr_expect(strstr(err.msg, "0xc1") != NULL, "%s", err.msg);

	EXPECT_REQ("{\"v\":1,\"op\":\"ping\",\"body\":{}}", ANC_EMALFORMED,
	    "id: required field missing");
	EXPECT_REQ("{\"v\":1,\"op\":\"ping\",\"id\":-1,\"body\":{}}",
	    ANC_EINVAL, "id: -1 is negative");
	EXPECT_REQ("{\"v\":1,\"op\":\"ping\",\"id\":1.0,\"body\":{}}",
	    ANC_EMALFORMED, "id: expected non-negative int, got float");
	EXPECT_REQ("{\"v\":1,\"op\":\"ping\",\"id\":\"1\",\"body\":{}}",
	    ANC_EMALFORMED, "id: expected non-negative int, got str");
	EXPECT_REQ("{\"op\":\"ping\",\"id\":1}", ANC_EMALFORMED,
	    "v: required field missing");
	EXPECT_REQ("{\"v\":2,\"op\":\"ping\",\"id\":1}", ANC_EUNSUPPORTED,
	    "v: protocol version 2 is not supported");
	EXPECT_REQ("{\"v\":0,\"op\":\"ping\",\"id\":1}", ANC_EUNSUPPORTED, "v:");
	EXPECT_REQ("{\"v\":\"1\",\"op\":\"ping\",\"id\":1}", ANC_EMALFORMED,
	    "v: expected");
	EXPECT_REQ("{\"v\":1,\"id\":1}", ANC_EMALFORMED,
	    "op: required field missing");
	EXPECT_REQ("{\"v\":1,\"op\":7,\"id\":1}", ANC_EMALFORMED,
	    "op: expected str, got int");
	EXPECT_REQ("{\"v\":1,\"op\":\"frobnicate\",\"id\":1}", ANC_EUNSUPPORTED,
	    "op: unknown operation 'frobnicate'");
	EXPECT_REQ("{\"v\":1,\"op\":\"a_very_long_operation_name_indeed_xx\","
	    "\"id\":1}", ANC_EUNSUPPORTED, "op: unknown operation");
	EXPECT_REQ("{\"v\":1,\"op\":\"ping\",\"id\":1,\"body\":[]}",
	    ANC_EMALFORMED, "body: expected map, got array");
	/* An empty key is refused, as the encoder refuses it (found by
	 * fuzz_req: decode . encode must be the identity). */
	EXPECT_REQ("{\"v\":1,\"op\":\"info\",\"id\":1,\"auth\":\"\"}",
	    ANC_EINVAL, "auth: empty, the API key must be 1..256 bytes");
	EXPECT_REQ("{\"v\":1,\"op\":\"info\",\"id\":1,\"auth\":\"k\"}",
	    ANC_OK, NULL);
	/* Unknown keys are ignored, everywhere. */
	EXPECT_REQ("{\"v\":1,\"op\":\"ping\",\"id\":1,\"trace\":{\"a\":[1,2]},"
	    "\"body\":{\"x\":1}}", ANC_OK, NULL);

	/* id_out is set as soon as the id is read, even when later fields
	 * are wrong, so the server can answer with it. */
	id = 0;
	anc_error e;
	cr_expect_eq(req_json("{\"id\":4242,\"v\":9,\"op\":\"ping\"}", &e, &id),
	    ANC_EUNSUPPORTED);
	cr_expect_eq(id, 4242);
	id = 0;
	cr_expect_eq(req_json("{\"v\":1,\"op\":\"query\",\"id\":77,\"body\":"
	    "{\"collection\":\"d\",\"vectors\":[\"#x:000000\"]}}", &e, &id),
	    ANC_EMALFORMED);
	cr_expect_eq(id, 77);

	/* pins nil or empty: no pins (nil is absent, section 3) */
	EXPECT_REQ("{\"v\":1,\"op\":\"query\",\"id\":1,\"body\":{\"collection\":"
	    "\"d\",\"vectors\":[\"#f:1\"],\"pins\":null}}", ANC_OK, NULL);
	EXPECT_REQ("{\"v\":1,\"op\":\"query\",\"id\":1,\"body\":{\"collection\":"
	    "\"d\",\"vectors\":[\"#f:1\"],\"pins\":[]}}", ANC_OK, NULL);
	/* a response's "pinned": nil is none; another type is refused */
	EXPECT_RESP("{\"v\":1,\"id\":1,\"ok\":true,\"body\":{\"results\":[],"
	    "\"provenance\":{\"contract\":\"0123456789abcdef\",\"index\":"
	    "\"flat\",\"exact\":true,\"ef_search\":0,\"seq\":1,\"generation\":"
	    "1},\"pinned\":null}}", ANC_OP_QUERY, ANC_OK, NULL);
	EXPECT_RESP("{\"v\":1,\"id\":1,\"ok\":true,\"body\":{\"results\":[],"
	    "\"provenance\":{\"contract\":\"0123456789abcdef\",\"index\":"
	    "\"flat\",\"exact\":true,\"ef_search\":0,\"seq\":1,\"generation\":"
	    "1},\"pinned\":3}}", ANC_OP_QUERY, ANC_EMALFORMED,
	    "body.pinned: expected array, got int");
}

Test(proto, duplicate_keys_refused)
{
	/* Built by hand: JSON cannot say it. {"v":1,"v":1,...} */
	msgpack_sbuffer sb;
	msgpack_packer pk;
	anc_req *req;
	anc_error err;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "id", 2);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_str_with_body(&pk, "op", 2);
	msgpack_pack_str_with_body(&pk, "ping", 4);
	msgpack_pack_str_with_body(&pk, "op", 2);
	msgpack_pack_str_with_body(&pk, "info", 4);
	cr_expect_eq(anc_req_decode(sb.data, sb.size, &g_lim, &req, NULL,
	    &err), ANC_EMALFORMED);
	cr_expect(strstr(err.msg, "op: duplicate key") != NULL, "%s", err.msg);
	msgpack_sbuffer_destroy(&sb);
}

Test(proto, oversize_message)
{
	msgset m;
	anc_error err;
	anc_req *req;
	anc_resp *resp;
	msgset_build(&m);
	anc_buf *b = &m.req[ANC_OP_UPSERT];
	g_lim.max_message = (uint32_t)b->len;
	cr_expect_eq(anc_req_decode(b->data, b->len, &g_lim, &req, NULL, &err),
	    ANC_OK);
	anc_req_free(req);
	g_lim.max_message = (uint32_t)b->len - 1;
	cr_expect_eq(anc_req_decode(b->data, b->len, &g_lim, &req, NULL, &err),
	    ANC_ETOOBIG);
	cr_expect(strstr(err.msg, "max_message") != NULL, "%s", err.msg);
	b = &m.resp[ANC_OP_QUERY];
	g_lim.max_message = 8;
	cr_expect_eq(anc_resp_decode(b->data, b->len, ANC_OP_QUERY, &g_lim,
	    &resp, &err), ANC_ETOOBIG);
	msgset_free(&m);
}

Test(proto, lying_container_counts)
{
	anc_req *req;
	anc_error err;
	/* An array32 claiming 4 billion elements in 6 bytes: refused by the
	 * scan before msgpack-c could allocate for it. */
	uint8_t arr[] = { 0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff };
	cr_expect_eq(anc_req_decode(arr, sizeof(arr), &g_lim, &req, NULL, &err),
	    ANC_EMALFORMED);
	cr_expect(strstr(err.msg, "claims") != NULL, "%s", err.msg);
	uint8_t map[] = { 0xdf, 0x7f, 0xff, 0xff, 0xff, 0x00, 0x00 };
	cr_expect_eq(anc_req_decode(map, sizeof(map), &g_lim, &req, NULL, &err),
	    ANC_EMALFORMED);
	/* A str32 longer than the buffer. */
	uint8_t str[] = { 0x81, 0xa1, 'x', 0xdb, 0x10, 0x00, 0x00, 0x00, 'a' };
	cr_expect_eq(anc_req_decode(str, sizeof(str), &g_lim, &req, NULL, &err),
	    ANC_EMALFORMED);
	cr_expect(strstr(err.msg, "truncated") != NULL, "%s", err.msg);
}

/* A request of one-byte values costs the unpacker 16 bytes or more per
 * value: past ANC_REQ_VALUES_MAX it is refused by the scan, before
 * msgpack-c allocates anything. */
Test(proto, value_count_bounded)
{
	/* {"v":1,"op":"ping","id":1,"x":[nil x N]} */
	const uint8_t head[] = { 0x84, 0xa1, 'v', 0x01, 0xa2, 'o', 'p', 0xa4,
	    'p', 'i', 'n', 'g', 0xa2, 'i', 'd', 0x01, 0xa1, 'x', 0xdd };
	const uint32_t before = 8; /* map, 3 keys, 3 values, key "x" */
	anc_limits lim = g_lim;
	anc_req *req = NULL;
	anc_error err;
	size_t cap = sizeof(head) + 4 + ANC_REQ_VALUES_MAX;
	uint8_t *buf = malloc(cap);

	cr_assert_not_null(buf);
	lim.max_message = (uint32_t)cap;
	for (int over = 0; over <= 1; over++) {
		/* the array itself is a value too */
		uint32_t n = ANC_REQ_VALUES_MAX - before - 1 + (uint32_t)over;
		memcpy(buf, head, sizeof(head));
		buf[sizeof(head)] = (uint8_t)(n >> 24);
		buf[sizeof(head) + 1] = (uint8_t)(n >> 16);
		buf[sizeof(head) + 2] = (uint8_t)(n >> 8);
		buf[sizeof(head) + 3] = (uint8_t)n;
		memset(buf + sizeof(head) + 4, 0xc0, n);
		int rv = anc_req_decode(buf, sizeof(head) + 4 + n, &lim, &req,
		                        NULL, &err);
		if (over) {
			cr_expect_eq(rv, ANC_ETOOBIG, "%s", err.msg);
			cr_expect(strstr(err.msg, "message: more than 4194304 "
			                 "msgpack values") != NULL, "%s", err.msg);
		} else {
			cr_expect_eq(rv, ANC_OK, "%s", err.msg);
			anc_req_free(req);
		}
	}
	free(buf);
}

Test(proto, deep_nesting)
{
	anc_req *req;
	anc_error err;
	uint8_t buf[300];
	size_t n = 0;
	/* {"v":1,"op":"ping","id":1,"x":[[[[...]]]]} with 40 levels. */
	const uint8_t head[] = { 0x84, 0xa1, 'v', 0x01, 0xa2, 'o', 'p', 0xa4,
	    'p', 'i', 'n', 'g', 0xa2, 'i', 'd', 0x01, 0xa1, 'x' };
	memcpy(buf, head, sizeof(head));
	n = sizeof(head);
	for (int i = 0; i < 40; i++)
		buf[n++] = 0x91;
	buf[n++] = 0x00;
	cr_expect_eq(anc_req_decode(buf, n, &g_lim, &req, NULL, &err),
	    ANC_ETOOBIG);
	cr_expect(strstr(err.msg, "nested deeper") != NULL, "%s", err.msg);
	/* 20 levels inside an unknown key is fine. */
	n = sizeof(head);
	for (int i = 0; i < 20; i++)
		buf[n++] = 0x91;
	buf[n++] = 0x00;
	cr_expect_eq(anc_req_decode(buf, n, &g_lim, &req, NULL, &err), ANC_OK,
	    "%s", err.msg);
	anc_req_free(req);
	/* Even empty containers count. */
	n = sizeof(head);
	for (int i = 0; i < 30; i++)
		buf[n++] = 0x91;
	buf[n - 1] = 0x90;
	cr_expect_eq(anc_req_decode(buf, n, &g_lim, &req, NULL, &err),
	    ANC_ETOOBIG);
}

#define UPSERT_PRE "{\"v\":1,\"op\":\"upsert\",\"id\":1,\"body\":" \
	"{\"collection\":\"docs\",\"contract\":\"m@1\",\"records\":["
#define UPSERT_POST "]}}"
#define REC_OK "{\"source\":\"s\",\"chunk\":\"c\",\"vector\":\"#f:1,2\"}"

static char *
nested_meta(int depth)
{
	/* {"source":"s","chunk":"c","vector":...,"meta":{"a":{"a":...1}}} */
	static char buf[4096];
	int n = snprintf(buf, sizeof(buf), UPSERT_PRE "{\"source\":\"s\","
	    "\"chunk\":\"c\",\"vector\":\"#f:1\",\"meta\":");
	for (int i = 0; i < depth; i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "{\"a\":");
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "1");
	for (int i = 0; i < depth; i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "}");
	snprintf(buf + n, sizeof(buf) - (size_t)n, "}" UPSERT_POST);
	return buf;
}

Test(proto, meta_bounds)
{
	EXPECT_REQ(nested_meta(1), ANC_OK, NULL);
	EXPECT_REQ(nested_meta(8), ANC_OK, NULL);
	EXPECT_REQ(nested_meta(9), ANC_ETOOBIG,
	    "body.records[0].meta: nested deeper than 8");
	EXPECT_REQ(UPSERT_PRE "{\"source\":\"s\",\"chunk\":\"c\",\"vector\":"
	    "\"#f:1\",\"meta\":[1]}" UPSERT_POST, ANC_EMALFORMED,
	    "body.records[0].meta: expected map, got array");
	EXPECT_REQ(UPSERT_PRE "{\"source\":\"s\",\"chunk\":\"c\",\"vector\":"
	    "\"#f:1\",\"meta\":null}" UPSERT_POST, ANC_OK, NULL);
	g_lim.max_meta = 8;
	EXPECT_REQ(UPSERT_PRE "{\"source\":\"s\",\"chunk\":\"c\",\"vector\":"
	    "\"#f:1\",\"meta\":{\"k\":\"0123456789\"}}" UPSERT_POST,
	    ANC_ETOOBIG, "max_meta=8");
	EXPECT_REQ(UPSERT_PRE "{\"source\":\"s\",\"chunk\":\"c\",\"vector\":"
	    "\"#f:1\",\"meta\":{\"k\":1}}" UPSERT_POST, ANC_OK, NULL);
}

/* ---- field errors: a table --------------------------------------------------- */

typedef struct bad_case {
	const char *json;
	int code;
	const char *msg;
} bad_case;

#define Q_PRE "{\"v\":1,\"op\":\"query\",\"id\":1,\"body\":{\"collection\":" \
	"\"docs\","
#define R_PRE "{\"v\":1,\"op\":\"resolve\",\"id\":1,\"body\":{"
#define V_PRE "{\"v\":1,\"op\":\"verify\",\"id\":1,\"body\":{" \
	"\"collection\":\"docs\",\"claims\":[{\"vector\":\"#f:1\"," \
	"\"cited\":[\"w3m3wyn2sb2rgj2syaglizac5i\"],"
#define C_PRE "{\"v\":1,\"op\":\"contract_register\",\"id\":1,\"body\":" \
	"{\"collection\":\"docs\",\"contract\":{\"name\":\"n\",\"model\":" \
	"\"m\",\"revision\":\"r\","

static const bad_case bad_requests[] = {
	/* collection_create */
	{ "{\"v\":1,\"op\":\"collection_create\",\"id\":1,\"body\":{}}",
	  ANC_EMALFORMED, "body.name: required field missing" },
	{ "{\"v\":1,\"op\":\"collection_create\",\"id\":1,\"body\":"
	  "{\"name\":3}}", ANC_EMALFORMED, "body.name: expected str, got int" },
	{ "{\"v\":1,\"op\":\"collection_create\",\"id\":1,\"body\":"
	  "{\"name\":\"a\\u0000b\"}}", ANC_EINVAL, "body.name: embedded NUL" },
	{ "{\"v\":1,\"op\":\"collection_create\",\"id\":1,\"body\":"
	  "{\"name\":null}}", ANC_EMALFORMED, "body.name: expected str, got nil" },
	/* contract_register */
	{ C_PRE "\"dim\":4,\"metric\":\"l2\"}}}", ANC_EMALFORMED,
	  "body.contract.normalize: required field missing" },
	{ C_PRE "\"dim\":4,\"metric\":\"l2\",\"normalize\":1}}}",
	  ANC_EMALFORMED, "body.contract.normalize: expected bool, got int" },
	{ C_PRE "\"dim\":4.0,\"metric\":\"l2\",\"normalize\":true}}}",
	  ANC_EMALFORMED, "body.contract.dim: expected non-negative int, got "
	  "float" },
	{ C_PRE "\"dim\":-4,\"metric\":\"l2\",\"normalize\":true}}}",
	  ANC_EINVAL, "body.contract.dim: -4 is negative" },
	{ C_PRE "\"dim\":4294967296,\"metric\":\"l2\",\"normalize\":true}}}",
	  ANC_EINVAL, "body.contract.dim: 4294967296 is out of range" },
	{ C_PRE "\"dim\":4,\"metric\":\"hamming\",\"normalize\":true}}}",
	  ANC_EINVAL, "body.contract.metric: expected l2, ip or cosine, got "
	  "'hamming'" },
	{ C_PRE "\"dim\":4,\"metric\":\"l2\",\"normalize\":true,\"index\":"
	  "{\"kind\":\"ivf\"}}}}", ANC_EINVAL, "body.contract.index.kind: "
	  "expected flat, hnsw, hnsw_sq8, ivf_flat or ivf_pq, got 'ivf'" },
	{ C_PRE "\"dim\":4,\"metric\":\"l2\",\"normalize\":true,\"index\":"
	  "{\"m\":4}}}}", ANC_EMALFORMED, "body.contract.index.kind: required" },
	{ C_PRE "\"dim\":4,\"metric\":\"l2\",\"normalize\":true,\"index\":"
	  "{\"kind\":\"hnsw\",\"ef_search\":\"64\"}}}}", ANC_EMALFORMED,
	  "body.contract.index.ef_search: expected non-negative int, got str" },
	{ C_PRE "\"dim\":4,\"metric\":\"l2\",\"normalize\":true,\"index\":"
	  "\"hnsw\"}}}", ANC_EMALFORMED, "body.contract.index: expected map" },
	{ C_PRE "\"dim\":4,\"metric\":\"l2\",\"normalize\":true,"
	  "\"preprocess\":7}}}", ANC_EMALFORMED,
	  "body.contract.preprocess: expected str, got int" },
	{ "{\"v\":1,\"op\":\"contract_register\",\"id\":1,\"body\":"
	  "{\"collection\":\"docs\",\"contract\":[]}}", ANC_EMALFORMED,
	  "body.contract: expected map, got array" },
	{ "{\"v\":1,\"op\":\"contract_register\",\"id\":1,\"body\":"
	  "{\"contract\":{}}}", ANC_EMALFORMED,
	  "body.collection: required field missing" },
	/* upsert */
	{ UPSERT_PRE UPSERT_POST, ANC_EINVAL, "body.records: empty" },
	{ "{\"v\":1,\"op\":\"upsert\",\"id\":1,\"body\":{\"collection\":"
	  "\"docs\",\"records\":[" REC_OK "]}}", ANC_EMALFORMED,
	  "body.contract: required field missing" },
	{ "{\"v\":1,\"op\":\"upsert\",\"id\":1,\"body\":{\"collection\":"
	  "\"docs\",\"contract\":\"\",\"records\":[" REC_OK "]}}", ANC_EINVAL,
	  "body.contract: empty" },
	{ "{\"v\":1,\"op\":\"upsert\",\"id\":1,\"body\":{\"collection\":"
	  "\"docs\",\"contract\":\"m@1\",\"records\":{}}}", ANC_EMALFORMED,
	  "body.records: expected array, got map" },
	{ UPSERT_PRE REC_OK ",7" UPSERT_POST, ANC_EMALFORMED,
	  "body.records[1]: expected map, got int" },
	{ UPSERT_PRE REC_OK "," REC_OK ",{\"source\":\"s\",\"chunk\":\"c\","
	  "\"vector\":\"abc\"}" UPSERT_POST, ANC_EMALFORMED,
	  "body.records[2].vector: expected bin of float32, got str" },
	{ UPSERT_PRE "{\"source\":\"s\",\"chunk\":\"c\",\"vector\":[1.0,2.0]}"
	  UPSERT_POST, ANC_EMALFORMED,
	  "body.records[0].vector: expected bin of float32, got array" },
	{ UPSERT_PRE "{\"source\":\"s\",\"chunk\":\"c\"}" UPSERT_POST,
	  ANC_EMALFORMED, "body.records[0].vector: required field missing" },
	{ UPSERT_PRE "{\"source\":\"s\",\"chunk\":\"c\",\"vector\":"
	  "\"#x:000000\"}" UPSERT_POST, ANC_EMALFORMED,
	  "body.records[0].vector: bin of 3 bytes, expected a non-zero "
	  "multiple of 4" },
	{ UPSERT_PRE "{\"source\":\"s\",\"chunk\":\"c\",\"vector\":\"#x:\"}"
	  UPSERT_POST, ANC_EMALFORMED, "bin of 0 bytes" },
	{ UPSERT_PRE "{\"chunk\":\"c\",\"vector\":\"#f:1\"}" UPSERT_POST,
	  ANC_EMALFORMED, "body.records[0].source: required field missing" },
	{ UPSERT_PRE "{\"source\":\"\",\"chunk\":\"c\",\"vector\":\"#f:1\"}"
	  UPSERT_POST, ANC_EINVAL, "body.records[0].source: empty" },
	{ UPSERT_PRE "{\"source\":\"s\",\"vector\":\"#f:1\"}" UPSERT_POST,
	  ANC_EMALFORMED, "body.records[0].chunk: required field missing" },
	{ UPSERT_PRE "{\"source\":\"s\",\"chunk\":1,\"vector\":\"#f:1\"}"
	  UPSERT_POST, ANC_EMALFORMED,
	  "body.records[0].chunk: expected str, got int" },
	{ UPSERT_PRE "{\"source\":\"s\\u0000x\",\"chunk\":\"c\",\"vector\":"
	  "\"#f:1\"}" UPSERT_POST, ANC_EINVAL,
	  "body.records[0].source: embedded NUL byte at offset 1" },
	{ UPSERT_PRE "{\"source\":\"s\",\"chunk\":\"c\",\"text\":\"ab\\u0000\","
	  "\"vector\":\"#f:1\"}" UPSERT_POST, ANC_EINVAL,
	  "body.records[0].text: embedded NUL" },
	{ UPSERT_PRE "{\"source\":\"s\",\"chunk\":\"c\",\"text\":false,"
	  "\"vector\":\"#f:1\"}" UPSERT_POST, ANC_EMALFORMED,
	  "body.records[0].text: expected str, got bool" },
	{ UPSERT_PRE "{\"source\":\"s\",\"chunk\":\"c\",\"text\":null,"
	  "\"vector\":\"#f:1\"}" UPSERT_POST, ANC_OK, NULL },
	/* query */
	{ Q_PRE "\"vectors\":[]}}", ANC_EINVAL, "body.vectors: empty" },
	{ Q_PRE "\"vectors\":\"#f:1\"}}", ANC_EMALFORMED,
	  "body.vectors: expected array, got bin" },
	{ Q_PRE "\"k\":5}}", ANC_EMALFORMED,
	  "body.vectors: required field missing" },
	{ Q_PRE "\"vectors\":[\"#f:1,2,3\",\"#f:1,2,3\",\"#f:1,2,3\","
	  "\"#f:1,2\"]}}", ANC_EDIM, "body.vectors[3]: 2 floats, vectors[0] has 3" },
	{ Q_PRE "\"vectors\":[\"#f:1,2\",\"#x:0000\"]}}", ANC_EMALFORMED,
	  "body.vectors[1]: bin of 2 bytes" },
	/* pins: an array of anchors, each named when bad */
	{ Q_PRE "\"vectors\":[\"#f:1\"],\"pins\":\"x\"}}", ANC_EMALFORMED,
	  "body.pins: expected array, got str" },
	{ Q_PRE "\"vectors\":[\"#f:1\"],\"pins\":[\"w3m3wyn2sb2rgj2syaglizac5i\","
	  "\"nope\"]}}", ANC_EINVAL, "body.pins[1]: 4 bytes, expected a "
	  "26-character anchor" },
	{ Q_PRE "\"vectors\":[\"#f:1\"],\"pins\":[3]}}", ANC_EMALFORMED,
	  "body.pins[0]: expected str, got int" },
	{ Q_PRE "\"vectors\":[\"#f:1\"],\"k\":0}}", ANC_EINVAL,
	  "body.k: 0 is out of range, expected 1..1000" },
	{ Q_PRE "\"vectors\":[\"#f:1\"],\"k\":1001}}", ANC_ETOOBIG,
	  "body.k: 1001, over the limit max_k=1000" },
	{ Q_PRE "\"vectors\":[\"#f:1\"],\"k\":1000}}", ANC_OK, NULL },
	{ Q_PRE "\"vectors\":[\"#f:1\"],\"k\":-1}}", ANC_EINVAL,
	  "body.k: -1 is negative" },
	{ Q_PRE "\"vectors\":[\"#f:1\"],\"k\":10.0}}", ANC_EMALFORMED,
	  "body.k: expected non-negative int, got float" },
	{ Q_PRE "\"vectors\":[\"#f:1\"],\"k\":9223372036854775807}}",
	  ANC_ETOOBIG, "max_k" },
	{ Q_PRE "\"vectors\":[\"#f:1\"],\"text\":\"yes\"}}", ANC_EMALFORMED,
	  "body.text: expected bool, got str" },
	{ Q_PRE "\"vectors\":[\"#f:1\"],\"contract\":5}}", ANC_EMALFORMED,
	  "body.contract: expected str, got int" },
	{ Q_PRE "\"vectors\":[\"#f:1\"],\"contract\":null}}", ANC_OK, NULL },
	{ "{\"v\":1,\"op\":\"query\",\"id\":1,\"body\":{\"vectors\":"
	  "[\"#f:1\"]}}", ANC_EMALFORMED,
	  "body.collection: required field missing" },
	/* resolve / delete */
	{ R_PRE "\"collection\":\"docs\",\"anchors\":[]}}", ANC_EINVAL,
	  "body.anchors: empty" },
	{ R_PRE "\"collection\":\"docs\"}}", ANC_EMALFORMED,
	  "body.anchors: required field missing" },
	{ R_PRE "\"collection\":\"docs\",\"anchors\":\"x\"}}", ANC_EMALFORMED,
	  "body.anchors: expected array, got str" },
	{ R_PRE "\"collection\":\"docs\",\"anchors\":[12]}}", ANC_EMALFORMED,
	  "body.anchors[0]: expected str, got int" },
	{ R_PRE "\"collection\":\"docs\",\"anchors\":[\"short\"]}}", ANC_EINVAL,
	  "body.anchors[0]: 5 bytes, expected a 26-character anchor" },
	{ R_PRE "\"collection\":\"docs\",\"anchors\":"
	  "[\"ABCDEFGHIJKLMNOPQRSTUVWXYZ\"]}}", ANC_EINVAL, "body.anchors[0]" },
	{ R_PRE "\"collection\":\"docs\",\"anchors\":"
	  "[\"aaaaaaaaaaaaaaaaaaaaaaaaa1\"]}}", ANC_EINVAL, "body.anchors[0]" },
	{ R_PRE "\"collection\":\"docs\",\"anchors\":"
	  "[\"aaaaaaaaaaaaa\\u0000aaaaaaaaaaaa\"]}}", ANC_EINVAL,
	  "body.anchors[0]: embedded NUL" },
	{ R_PRE "\"collection\":1,\"anchors\":[]}}", ANC_EMALFORMED,
	  "body.collection: expected str, got int" },
	/* verify: a negative revision is out of range, like k: -1 */
	{ V_PRE "\"revisions\":[-1]}]}}", ANC_EINVAL,
	  "body.claims[0].revisions[0]: -1 is negative" },
	{ V_PRE "\"revisions\":[1.5]}]}}", ANC_EMALFORMED,
	  "body.claims[0].revisions[0]: expected uint, got float" },
	{ V_PRE "\"revisions\":[7]}]}}", ANC_OK, NULL },
};

Test(proto, field_errors)
{
	for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]);
	     i++)
		EXPECT_REQ(bad_requests[i].json, bad_requests[i].code,
		    bad_requests[i].msg);
}

Test(proto, anchors_valid_and_invalid_in_one_list)
{
	char json[512];
	snprintf(json, sizeof(json), R_PRE "\"collection\":\"docs\","
	    "\"anchors\":[\"%s\",\"%s\",\"%.25sz\"]}}", A(1), A(2), A(3));
	/* Changing the last character breaks the zero trailing bits unless
	 * it happens to be one of the valid ones: check both outcomes
	 * against anc_anchor_parse itself. */
	char last[27];
	uint8_t raw[ANC_ANCHOR_RAW];
	snprintf(last, sizeof(last), "%.25sz", A(3));
	int expect = anc_anchor_parse(last, raw, NULL) == ANC_OK ? ANC_OK
	                                                       : ANC_EINVAL;
	EXPECT_REQ(json, expect, "body.anchors[2]");
	snprintf(json, sizeof(json), R_PRE "\"collection\":\"docs\","
	    "\"anchors\":[\"%s\",\"%s\"]}}", A(1), A(2));
	EXPECT_REQ(json, ANC_OK, NULL);
}

Test(proto, count_limits)
{
	char json[1024];
	g_lim.max_records = 2;
	EXPECT_REQ(UPSERT_PRE REC_OK "," REC_OK UPSERT_POST, ANC_OK, NULL);
	EXPECT_REQ(UPSERT_PRE REC_OK "," REC_OK "," REC_OK UPSERT_POST,
	    ANC_ETOOBIG, "body.records: 3 elements, over the limit "
	    "max_records=2");
	g_lim.max_queries = 2;
	EXPECT_REQ(Q_PRE "\"vectors\":[\"#f:1\",\"#f:2\"]}}", ANC_OK, NULL);
	EXPECT_REQ(Q_PRE "\"vectors\":[\"#f:1\",\"#f:2\",\"#f:3\"]}}",
	    ANC_ETOOBIG, "max_queries=2");
	g_lim.max_anchors = 1;
	snprintf(json, sizeof(json), R_PRE "\"collection\":\"docs\","
	    "\"anchors\":[\"%s\",\"%s\"]}}", A(1), A(2));
	EXPECT_REQ(json, ANC_ETOOBIG, "body.anchors: 2 elements, over the "
	    "limit max_anchors=1");
	g_lim.max_k = 5;
	EXPECT_REQ(Q_PRE "\"vectors\":[\"#f:1\"],\"k\":6}}", ANC_ETOOBIG,
	    "max_k=5");
	g_lim.max_text = 3;
	EXPECT_REQ(UPSERT_PRE "{\"source\":\"s\",\"chunk\":\"c\",\"text\":"
	    "\"abc\",\"vector\":\"#f:1\"}" UPSERT_POST, ANC_OK, NULL);
	EXPECT_REQ(UPSERT_PRE "{\"source\":\"s\",\"chunk\":\"c\",\"text\":"
	    "\"abcd\",\"vector\":\"#f:1\"}" UPSERT_POST, ANC_ETOOBIG,
	    "body.records[0].text: 4 bytes, longer than the limit of 3");
}

Test(proto, fixed_size_strings)
{
	char json[4096], big[1100];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* collection names are at most 128 bytes */
	snprintf(json, sizeof(json), "{\"v\":1,\"op\":\"collection_create\","
	    "\"id\":1,\"body\":{\"name\":\"%.129s\"}}", big);
	EXPECT_REQ(json, ANC_EINVAL, "body.name: 129 bytes, longer than the "
	    "limit of 128");
	snprintf(json, sizeof(json), "{\"v\":1,\"op\":\"collection_create\","
	    "\"id\":1,\"body\":{\"name\":\"%.128s\"}}", big);
	EXPECT_REQ(json, ANC_OK, NULL);
	/* contract name fits its char array or is refused */
	snprintf(json, sizeof(json), C_PRE "\"dim\":4,\"metric\":\"l2\","
	    "\"normalize\":true,\"preprocess\":\"%.513s\"}}}", big);
	/* C_PRE's fixed fields come first; this one is too long. */
	EXPECT_REQ(json, ANC_EINVAL, "body.contract.preprocess: 513 bytes");
	/* source keys */
	snprintf(json, sizeof(json), UPSERT_PRE "{\"source\":\"%.1025s\","
	    "\"chunk\":\"c\",\"vector\":\"#f:1\"}" UPSERT_POST, big);
	EXPECT_REQ(json, ANC_EINVAL, "body.records[0].source: 1025 bytes");
}

/* ---- encoder refusals ---------------------------------------------------- */

Test(proto, encode_refuses_what_decoder_would)
{
	anc_buf buf;
	anc_req req;
	anc_error err;
	float v[2] = { 1, 2 };
	anc_anchor_str bad = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	anc_record rec = { .source = "s", .chunk = "c", .vec = v, .dim = 2 };
	uint8_t notmap[] = { 0x91, 0x01 };
	uint8_t trailing[] = { 0x80, 0x00 };
	anc_buf_init(&buf);

	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_COLLECTION_CREATE;
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "body.name: required") != NULL, "%s",
	    err.msg);
	cr_expect_eq(buf.len, 0, "nothing left behind on failure");

	req.op = (anc_op)42;
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);

	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_RESOLVE;
	req.u.resolve.collection = "docs";
	req.u.resolve.anchors = &bad;
	req.u.resolve.nanchors = 1;
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "body.anchors[0]") != NULL, "%s", err.msg);
	req.u.resolve.nanchors = 0;
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);
	cr_expect_eq(buf.len, 0);

	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_UPSERT;
	req.u.upsert.collection = "docs";
	req.u.upsert.contract = "m@1";
	req.u.upsert.records = &rec;
	req.u.upsert.nrecords = 1;
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_OK, "%s", err.msg);
	anc_buf_reset(&buf);
	rec.dim = 0;
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "body.records[0].vector") != NULL, "%s",
	    err.msg);
	rec.dim = 2;
	rec.meta = notmap;
	rec.meta_len = sizeof(notmap);
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "body.records[0].meta") != NULL, "%s",
	    err.msg);
	rec.meta = trailing;
	rec.meta_len = sizeof(trailing);
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);
	rec.meta = NULL;
	rec.source = "";
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);
	rec.source = NULL;
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);
	rec.source = "s";
	req.u.upsert.contract = "";
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);
	cr_expect_eq(buf.len, 0);

	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_CONTRACT_REGISTER;
	req.u.contract_register.collection = "docs";
	req.u.contract_register.contract = sample_contract();
	req.u.contract_register.contract.metric = (anc_metric)7;
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "body.contract.metric") != NULL, "%s",
	    err.msg);
	req.u.contract_register.contract = sample_contract();
	memset(req.u.contract_register.contract.model, 'x',
	    sizeof(req.u.contract_register.contract.model));
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "body.contract.model") != NULL, "%s",
	    err.msg);

	memset(&req, 0, sizeof(req));
	req.op = ANC_OP_QUERY;
	req.u.query.collection = "docs";
	req.u.query.vectors = v;
	req.u.query.nq = 0;
	req.u.query.dim = 2;
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);
	req.u.query.nq = 1;
	req.u.query.vectors = NULL;
	cr_expect_eq(anc_req_encode(&req, &buf, &err), ANC_EINVAL);
	cr_expect_eq(buf.len, 0);

	/* Encoders append: a prefix already in the buffer is kept. */
	buf.len = 0;
	req.u.query.vectors = v;
	cr_assert_eq(anc_req_encode(&req, &buf, &err), ANC_OK);
	size_t one = buf.len;
	cr_assert_eq(anc_req_encode(&req, &buf, &err), ANC_OK);
	cr_expect_eq(buf.len, 2 * one);
	cr_expect_eq(memcmp(buf.data, buf.data + one, one), 0);
	anc_buf_free(&buf);
	anc_buf_free(&buf); /* twice is fine: it resets */
}

/* ---- response decoding is strict too ------------------------------------- */

Test(proto, resp_decode_strict)
{
	char json[2048];
	anc_error err;
	anc_resp *resp;
	uint8_t m[] = { 0x80 };
	cr_expect_eq(anc_resp_decode(m, 1, (anc_op)99, &g_lim, &resp, &err),
	    ANC_EINVAL);

	EXPECT_RESP("{\"v\":1,\"id\":1,\"ok\":true}", ANC_OP_PING,
	    ANC_EMALFORMED, "body: required field missing");
	EXPECT_RESP("{\"v\":1,\"id\":1,\"ok\":true,\"body\":{}}", ANC_OP_PING,
	    ANC_EMALFORMED, "body.version: required");
	EXPECT_RESP("{\"v\":1,\"id\":1,\"ok\":true,\"body\":{\"version\":"
	    "\"0123456789012345678901234567890123\"}}", ANC_OP_PING,
	    ANC_EINVAL, "body.version");
	EXPECT_RESP("{\"v\":1,\"id\":1,\"ok\":true,\"body\":{\"created\":1}}",
	    ANC_OP_COLLECTION_CREATE, ANC_EMALFORMED,
	    "body.created: expected bool");
	EXPECT_RESP("{\"v\":1,\"id\":1,\"ok\":true,\"body\":{\"id\":\"xyz\","
	    "\"created\":true}}", ANC_OP_CONTRACT_REGISTER, ANC_EINVAL,
	    "body.id");
	snprintf(json, sizeof(json), "{\"v\":1,\"id\":1,\"ok\":true,\"body\":"
	    "{\"results\":[{\"anchor\":\"%s\",\"revision\":1,\"status\":"
	    "\"exploded\"}],\"seq\":1}}", A(1));
	EXPECT_RESP(json, ANC_OP_UPSERT, ANC_EMALFORMED,
	    "body.results[0].status: unknown value 'exploded'");
	EXPECT_RESP("{\"v\":1,\"id\":1,\"ok\":true,\"body\":{\"results\":"
	    "[{\"anchor\":\"nope\",\"revision\":1,\"status\":\"created\"}],"
	    "\"seq\":1}}", ANC_OP_UPSERT, ANC_EINVAL, "body.results[0].anchor");
	snprintf(json, sizeof(json), "{\"v\":1,\"id\":1,\"ok\":true,\"body\":"
	    "{\"results\":[{\"anchor\":\"%s\",\"status\":\"deleted\","
	    "\"revision\":2}]}}", A(1));
	EXPECT_RESP(json, ANC_OP_DELETE, ANC_EMALFORMED,
	    "body.seq: required field missing");

	/* query: hits over max_hits across lists */
	const char *prov = "\"provenance\":{\"contract\":\"0123456789abcdef\","
	    "\"index\":\"flat\",\"exact\":true,\"ef_search\":0,\"seq\":1,"
	    "\"generation\":0}";
	char hit[256];
	snprintf(hit, sizeof(hit), "{\"anchor\":\"%s\",\"score\":0.5,"
	    "\"revision\":1,\"source\":\"s\",\"chunk\":\"c\"}", A(1));
	snprintf(json, sizeof(json), "{\"v\":1,\"id\":1,\"ok\":true,\"body\":"
	    "{\"results\":[{\"hits\":[%s,%s]},{\"hits\":[%s]}],%s}}", hit, hit,
	    hit, prov);
	EXPECT_RESP(json, ANC_OP_QUERY, ANC_OK, NULL);
	g_lim.max_hits = 2;
	EXPECT_RESP(json, ANC_OP_QUERY, ANC_ETOOBIG, "max_hits=2");
	g_lim.max_hits = 100;
	snprintf(json, sizeof(json), "{\"v\":1,\"id\":1,\"ok\":true,\"body\":"
	    "{\"results\":[{\"hits\":[{\"anchor\":\"%s\",\"score\":1,"
	    "\"revision\":1,\"source\":\"s\",\"chunk\":\"c\"}]}],%s}}", A(1),
	    prov);
	EXPECT_RESP(json, ANC_OP_QUERY, ANC_EMALFORMED,
	    "body.results[0].hits[0].score: expected float, got int");
	snprintf(json, sizeof(json), "{\"v\":1,\"id\":1,\"ok\":true,\"body\":"
	    "{\"results\":[{\"hits\":[%s]}]}}", hit);
	EXPECT_RESP(json, ANC_OP_QUERY, ANC_EMALFORMED,
	    "body.provenance: required");
	snprintf(json, sizeof(json), "{\"v\":1,\"id\":1,\"ok\":true,\"body\":"
	    "{\"results\":[],\"provenance\":{\"contract\":\"0123456789abcdef\","
	    "\"index\":\"ivf\",\"exact\":true,\"ef_search\":0,\"seq\":1,"
	    "\"generation\":0}}}");
	EXPECT_RESP(json, ANC_OP_QUERY, ANC_EMALFORMED,
	    "body.provenance.index: unknown value 'ivf'");
	/* resolve: meta must be a map, hash must fit */
	snprintf(json, sizeof(json), "{\"v\":1,\"id\":1,\"ok\":true,\"body\":"
	    "{\"results\":[{\"anchor\":\"%s\",\"status\":\"live\",\"meta\":"
	    "\"x\"}]}}", A(1));
	EXPECT_RESP(json, ANC_OP_RESOLVE, ANC_EMALFORMED,
	    "body.results[0].meta: expected map, got str");
	snprintf(json, sizeof(json), "{\"v\":1,\"id\":1,\"ok\":true,\"body\":"
	    "{\"results\":[{\"anchor\":\"%s\",\"status\":\"gone\"}]}}", A(1));
	EXPECT_RESP(json, ANC_OP_RESOLVE, ANC_EMALFORMED, "unknown value");
	/* info: a collection without contracts array */
	EXPECT_RESP("{\"v\":1,\"id\":1,\"ok\":true,\"body\":{\"version\":\"x\","
	    "\"seq\":0,\"collections\":[{\"name\":\"d\",\"live\":0,"
	    "\"deleted\":0,\"default_contract\":\"\"}]}}", ANC_OP_INFO,
	    ANC_EMALFORMED, "body.collections[0].contracts: required");
	EXPECT_RESP("{\"v\":1,\"id\":1,\"ok\":true,\"body\":{\"version\":\"x\","
	    "\"seq\":0,\"collections\":[]}}", ANC_OP_INFO, ANC_OK, NULL);
}

/* ---- fuzz ---------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t
rng(void)
{
	/* xorshift64*: fixed seed, same sequence on every run */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static void
mutate(uint8_t *p, size_t *len, size_t cap)
{
	static const uint8_t interesting[] = { 0x00, 0x7f, 0x80, 0x8f, 0x90,
	    0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc6, 0xca, 0xcb,
	    0xcf, 0xd3, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff };
	int n = 1 + (int)(rng() % 4);
	for (int i = 0; i < n && *len > 0; i++) {
		size_t at = rng() % *len;
		switch (rng() % 6) {
		case 0: p[at] ^= (uint8_t)(1u << (rng() % 8)); break;
		case 1: p[at] = (uint8_t)rng(); break;
		case 2: p[at] = interesting[rng() % sizeof(interesting)]; break;
		case 3: *len = at; break; /* truncate */
		case 4: /* duplicate a slice */
			if (*len < cap) {
				size_t k = rng() % (cap - *len) % 16;
				if (k > *len - at)
					k = *len - at;
				memmove(p + at + k, p + at, *len - at);
				*len += k;
			}
			break;
		default: /* delete a byte */
			memmove(p + at, p + at + 1, *len - at - 1);
			(*len)--;
			break;
		}
	}
}

Test(proto, fuzz_mutations, .timeout = 300)
{
	msgset m;
	anc_error err;
	anc_buf out;
	int ok = 0, total = 0;
	msgset_build(&m);
	anc_buf_init(&out);
	for (int iter = 0; iter < 20000; iter++) {
		int op = (int)(rng() % MSG_NOPS);
		int which = (int)(rng() % 3);
		const anc_buf *src = which == 0 ? &m.req[op]
		                   : which == 1 ? &m.resp[op] : &m.err;
		size_t cap = src->len + 64, len = src->len;
		uint8_t *p = malloc(cap);
		cr_assert_not_null(p);
		memcpy(p, src->data, len);
		mutate(p, &len, cap);
		total++;
		if (which == 0) {
			anc_req *req = NULL;
			uint64_t id;
			if (anc_req_decode(p, len, &g_lim, &req, &id, &err) ==
			    ANC_OK) {
				ok++;
				/* What decodes must encode again. */
				anc_buf_reset(&out);
				cr_assert_eq(anc_req_encode(req, &out, &err),
				    ANC_OK, "%s", err.msg);
				anc_req_free(req);
			} else {
				cr_assert_null(req);
				cr_assert(err.code > 0 && err.code < ANC_ECODE_MAX);
			}
		} else {
			anc_resp *resp = NULL;
			if (anc_resp_decode(p, len, (anc_op)op, &g_lim, &resp,
			    &err) == ANC_OK) {
				ok++;
				anc_resp_free(resp);
			} else {
				cr_assert_null(resp);
			}
		}
		free(p);
	}
	cr_log_info("fuzz: %d of %d mutated messages decoded", ok, total);
	cr_expect(ok > 0 && ok < total, "%d of %d mutated messages decoded",
	    ok, total);
	anc_buf_free(&out);
	msgset_free(&m);
}

Test(proto, every_msgpack_type_in_unknown_keys_and_meta)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	anc_req *req;
	anc_error err;
	char longs[300];
	float v = 0.5f;
	uint8_t vb[4];
	uint32_t u;
	memcpy(&u, &v, 4);
	for (int i = 0; i < 4; i++)
		vb[i] = (uint8_t)(u >> (8 * i));
	memset(longs, 'z', sizeof(longs));
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	msgpack_pack_str_with_body(&pk, "v", 1);
	msgpack_pack_uint16(&pk, 1); /* non-minimal encodings are fine */
	msgpack_pack_str_with_body(&pk, "id", 2);
	msgpack_pack_int64(&pk, 7);
	msgpack_pack_str_with_body(&pk, "op", 2);
	msgpack_pack_str_with_body(&pk, "upsert", 6);
	msgpack_pack_str_with_body(&pk, "extra", 5);
	msgpack_pack_array(&pk, 20); /* array16 */
	msgpack_pack_nil(&pk);
	msgpack_pack_true(&pk);
	msgpack_pack_false(&pk);
	msgpack_pack_int8(&pk, -5);
	msgpack_pack_int64(&pk, INT64_MIN);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	msgpack_pack_float(&pk, 1.5f);
	msgpack_pack_double(&pk, -2.25);
	msgpack_pack_str_with_body(&pk, longs, sizeof(longs)); /* str16 */
	msgpack_pack_bin_with_body(&pk, longs, 3);
	msgpack_pack_ext_with_body(&pk, "a", 1, 1);   /* fixext1 */
	msgpack_pack_ext_with_body(&pk, "abcd", 4, 2); /* fixext4 */
	msgpack_pack_ext_with_body(&pk, longs, 5, 3);  /* ext8 */
	msgpack_pack_ext_with_body(&pk, longs, 16, 4); /* fixext16 */
	msgpack_pack_map(&pk, 0);
	msgpack_pack_array(&pk, 0);
	msgpack_pack_str(&pk, 0);
	msgpack_pack_int16(&pk, -300);
	msgpack_pack_int32(&pk, -70000);
	msgpack_pack_uint32(&pk, 70000);
	msgpack_pack_str_with_body(&pk, "body", 4);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str_with_body(&pk, "collection", 10);
	msgpack_pack_str_with_body(&pk, "docs", 4);
	msgpack_pack_str_with_body(&pk, "contract", 8);
	msgpack_pack_str_with_body(&pk, "m@1", 3);
	msgpack_pack_str_with_body(&pk, "records", 7);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 4);
	msgpack_pack_str_with_body(&pk, "source", 6);
	msgpack_pack_str_with_body(&pk, "s", 1);
	msgpack_pack_str_with_body(&pk, "chunk", 5);
	msgpack_pack_str_with_body(&pk, "c", 1);
	msgpack_pack_str_with_body(&pk, "vector", 6);
	msgpack_pack_bin_with_body(&pk, vb, 4);
	msgpack_pack_str_with_body(&pk, "meta", 4);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_uint8(&pk, 1); /* a non-string key in meta is kept */
	msgpack_pack_ext_with_body(&pk, "xy", 2, 9);
	msgpack_pack_str_with_body(&pk, "f", 1);
	msgpack_pack_float(&pk, 0.25f);
	msgpack_pack_str_with_body(&pk, "n", 1);
	msgpack_pack_int64(&pk, -1);

	cr_assert_eq(anc_req_decode(sb.data, sb.size, &g_lim, &req, NULL,
	    &err), ANC_OK, "%s", err.msg);
	cr_expect_eq(req->id, 7);
	const anc_record *r = &req->u.upsert.records[0];
	cr_expect_float_eq(r->vec[0], 0.5f, 0);
	/* meta decodes back to the same three pairs */
	msgpack_unpacked up;
	size_t off = 0;
	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(&up, (const char *)r->meta,
	    r->meta_len, &off), MSGPACK_UNPACK_SUCCESS);
	cr_expect_eq(off, r->meta_len);
	cr_assert_eq(up.data.type, MSGPACK_OBJECT_MAP);
	cr_assert_eq(up.data.via.map.size, 3);
	cr_expect_eq(up.data.via.map.ptr[0].val.type, MSGPACK_OBJECT_EXT);
	cr_expect_eq(up.data.via.map.ptr[1].val.type, MSGPACK_OBJECT_FLOAT32);
	cr_expect_eq(up.data.via.map.ptr[2].val.via.i64, -1);
	msgpack_unpacked_destroy(&up);
	anc_req_free(req);
	msgpack_sbuffer_destroy(&sb);
}

/* ---- URLs (anc_url.c): one reading for the server's --listen and the
 * client's server URL ------------------------------------------------------ */

Test(proto, url_check_and_split)
{
	static const struct {
		const char *url;
		int listen_ok, dial_ok;
		const char *msg; /* in the error, when refused */
	} cases[] = {
		{"tcp://127.0.0.1:7700", 1, 1, NULL},
		{"tls+tcp6://[::1]:1", 1, 1, NULL},
		{"tcp://localhost:65535", 1, 1, NULL},
		{"ipc:///tmp/a.sock", 1, 1, NULL},
		{"inproc://x", 1, 1, NULL},
		{"tcp://:7700", 1, 0, "HOST:PORT"}, /* every interface */
		{"tcp://[]:7700", 1, 0, "HOST:PORT"},
		{"tcp://h:0", 0, 0, "port 1..65535"},
		{"tcp://h:65536", 0, 0, "port 1..65535"},
		{"tcp://h:99x", 0, 0, "port 1..65535"},
		{"tcp://h:+80", 0, 0, "port 1..65535"},
		{"tcp://h", 0, 0, "port 1..65535"},
		{"tcp://[::1", 0, 0, "IPv6 address in brackets"},
		{"ipc://", 0, 0, "ipc://PATH"},
		{"inproc://", 0, 0, "inproc://PATH"},
		{"http://h:80", 0, 0, "unsupported scheme"},
		{"", 0, 0, "unsupported scheme"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (int listen = 0; listen <= 1; listen++) {
			anc_error e = {0};
			int want = listen ? cases[i].listen_ok : cases[i].dial_ok;
			int rv = anc_url_check(cases[i].url, listen, "--x", &e);
			cr_expect_eq(rv == ANC_OK, want, "%s (listen %d): %s",
			             cases[i].url, listen, e.msg);
			if (want)
				continue;
			cr_expect_eq(rv, ANC_EINVAL, "%s", cases[i].url);
			cr_expect(strncmp(e.msg, "--x ", 4) == 0 &&
			          strstr(e.msg, cases[i].url) != NULL &&
			          strstr(e.msg, cases[i].msg) != NULL,
			          "%s (listen %d): %s", cases[i].url, listen,
			          e.msg);
		}
	}

	char host[8];
	const char *port = NULL;
	cr_expect(anc_url_tcp_split("tls+tcp://[::1]:9", host, sizeof host,
	                            &port));
	cr_expect_str_eq(host, "::1");
	cr_expect_str_eq(port, "9");
	cr_expect(anc_url_tcp_split("tcp://h", host, sizeof host, &port));
	cr_expect_str_eq(port, "");
	cr_expect_not(anc_url_tcp_split("tcp://toolonghost:1", host,
	                                sizeof host, &port));
	cr_expect_not(anc_url_tcp_split("ipc:///x", host, sizeof host, &port));
	cr_expect(anc_url_scheme_ok("tls+tcp4://h:1") &&
	          !anc_url_scheme_ok("udp://h:1"));
}

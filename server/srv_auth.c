/*
 * srv_auth.c — API keys: salted hashes, constant-time checks, roles.
 * See srv_auth.h for the model.
 */
#include "srv_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "anc_types.h"

typedef struct {
	char id[ANC_KEY_ID_MAX + 1];
	anc_role role;
	uint8_t salt[16];
	uint8_t hash[32];
} key_entry;

struct anc_auth {
	key_entry *keys;
	uint32_t n, cap;
};

static const char *const role_names[] = {"none", "read", "write", "admin"};

const char *
anc_role_name(anc_role r)
{
	return (r >= ANC_ROLE_NONE && r <= ANC_ROLE_ADMIN) ? role_names[r]
	                                                    : "unknown";
}

int
anc_role_parse(const char *s)
{
	for (int i = ANC_ROLE_READ; i <= ANC_ROLE_ADMIN; i++)
		if (s != NULL && strcmp(s, role_names[i]) == 0)
			return i;
	return -1;
}

anc_role
anc_op_role(anc_op op)
{
	switch (op) {
	case ANC_OP_PING:
		/* Liveness probes need no key; ping reveals only the
		 * server's version. */
		return ANC_ROLE_NONE;
	case ANC_OP_UPSERT:
	case ANC_OP_DELETE:
		return ANC_ROLE_WRITE;
	case ANC_OP_COLLECTION_CREATE:
	case ANC_OP_CONTRACT_REGISTER:
	case ANC_OP_CONTRACT_PROMOTE:
	case ANC_OP_CONTRACT_RETIRE:
		return ANC_ROLE_ADMIN;
	default:
		/* info, query, resolve, contract check, drift and any
		 * read-only op added later. Ops that write must be listed
		 * above. verify, receipt_get and receipt_replay are reads;
		 * so is a query or verify that asks for a receipt: the
		 * receipt is the server's own audit record of a read (no
		 * passage, vector or contract changes) with bounded
		 * retention, so read keys may make them (README "Grounding
		 * checks and receipts"). */
		return ANC_ROLE_READ;
	}
}

int
anc_auth_create(anc_auth **out, anc_error *err)
{
	if ((*out = calloc(1, sizeof(**out))) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "auth: out of memory");
	return ANC_OK;
}

void
anc_auth_free(anc_auth *a)
{
	if (a == NULL)
		return;
	/* Hashes are not secrets, but there is no reason to leave them. */
	if (a->keys != NULL)
		OPENSSL_cleanse(a->keys, a->cap * sizeof(key_entry));
	free(a->keys);
	free(a);
}

uint32_t
anc_auth_count(const anc_auth *a)
{
	return a != NULL ? a->n : 0;
}

static int
unhex(const char *s, uint8_t *out, size_t n)
{
	if (s == NULL || strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
		    strchr("0123456789abcdefABCDEF", s[2 * i]) == NULL ||
		    strchr("0123456789abcdefABCDEF", s[2 * i + 1]) == NULL)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static void
tohex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int
anc_auth_add(anc_auth *a, const char *id, const char *role,
             const char *salt_hex, const char *sha256_hex, anc_error *err)
{
	key_entry e;
	int r;

	memset(&e, 0, sizeof(e));
	if (id == NULL || id[0] == '\0' || strlen(id) > ANC_KEY_ID_MAX)
		return anc_error_set(err, ANC_EINVAL,
		    "keys[].id: expected 1..%d characters", ANC_KEY_ID_MAX);
	if ((r = anc_role_parse(role)) < 0)
		return anc_error_set(err, ANC_EINVAL,
		    "key '%s': role '%s': expected read, write or admin", id,
		    role ? role : "");
	if (unhex(salt_hex, e.salt, sizeof(e.salt)) != 0)
		return anc_error_set(err, ANC_EINVAL,
		    "key '%s': salt: expected 32 hex digits", id);
	if (unhex(sha256_hex, e.hash, sizeof(e.hash)) != 0)
		return anc_error_set(err, ANC_EINVAL,
		    "key '%s': sha256: expected 64 hex digits", id);
	for (const char *p = id; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return anc_error_set(err, ANC_EINVAL,
			    "keys[].id: control character at byte %zu, expected "
			    "a printable name", (size_t)(p - id));
	for (uint32_t i = 0; i < a->n; i++) {
		if (strcmp(a->keys[i].id, id) == 0)
			return anc_error_set(err, ANC_EEXIST,
			    "key '%s': configured twice", id);
		/* the same secret under two ids (or roles): which one a
		 * request is would depend on the order in the file */
		if (memcmp(a->keys[i].salt, e.salt, sizeof(e.salt)) == 0 &&
		    memcmp(a->keys[i].hash, e.hash, sizeof(e.hash)) == 0)
			return anc_error_set(err, ANC_EEXIST,
			    "key '%s': the same salt and sha256 as key '%s', "
			    "expected one entry per key", id, a->keys[i].id);
	}
	if (a->n == ANC_AUTH_MAX_KEYS)
		return anc_error_set(err, ANC_ETOOBIG,
		    "keys: at most %d", ANC_AUTH_MAX_KEYS);
	if (a->n == a->cap) {
		uint32_t cap = a->cap ? 2 * a->cap : 8;
		key_entry *k = realloc(a->keys, cap * sizeof(*k));
		if (k == NULL)
			return anc_error_set(err, ANC_ENOMEM,
			    "auth: out of memory");
		a->keys = k;
		a->cap = cap;
	}
	snprintf(e.id, sizeof(e.id), "%s", id);
	e.role = (anc_role)r;
	a->keys[a->n++] = e;
	return ANC_OK;
}

int
anc_auth_authorize(const anc_auth *a, anc_op op, const char *key,
                   anc_error *err)
{
	return anc_auth_require(a, anc_op_role(op), anc_op_name(op), key, err);
}

int
anc_auth_require(const anc_auth *a, anc_role need, const char *what,
                 const char *key, anc_error *err)
{
	if (a == NULL || a->n == 0)
		return ANC_OK;
	if (need == ANC_ROLE_NONE)
		return ANC_OK;
	if (key == NULL)
		return anc_error_set(err, ANC_EUNAUTHENTICATED,
		    "%s: this server requires an API key (the envelope's "
		    "\"auth\": anc_client_options.api_key in the C client, "
		    "--api-key or ANCHORAGE_API_KEY in the CLI)", what);

	/* Hash the presented key under every salt and compare each in
	 * constant time; no early exit. */
	size_t klen = strlen(key);
	uint8_t buf[16 + ANC_AUTH_MAX];
	anc_role got = ANC_ROLE_NONE;
	int failed = 0;
	if (klen > ANC_AUTH_MAX)
		klen = ANC_AUTH_MAX; /* the decoder bounds it already */
	memcpy(buf + 16, key, klen);
	for (uint32_t i = 0; i < a->n; i++) {
		uint8_t md[32];
		memcpy(buf, a->keys[i].salt, 16);
		if (anc_sha256(buf, 16 + klen, md) != ANC_OK)
			failed = 1;
		int match = CRYPTO_memcmp(md, a->keys[i].hash, 32) == 0;
		/* Branch-free select of the matching key's role. */
		int m = -match;
		got = (anc_role)(((int)got & ~m) | ((int)a->keys[i].role & m));
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	if (failed)
		return anc_error_set(err, ANC_ENOMEM,
		    "%s: cannot check the API key: out of memory",
		    what);
	if (got == ANC_ROLE_NONE)
		return anc_error_set(err, ANC_EUNAUTHENTICATED,
		    "%s: the API key is not valid", what);
	if (got < need)
		return anc_error_set(err, ANC_EPERMISSION,
		    "%s needs role %s; this key has role %s", what,
		    anc_role_name(need), anc_role_name(got));
	return ANC_OK;
}

int
anc_auth_keygen(char key[64], char salt_hex[33], char sha256_hex[65],
                anc_error *err)
{
	uint8_t raw[32], salt[16], buf[16 + 64], md[32];
	if (RAND_bytes(raw, sizeof(raw)) != 1 ||
	    RAND_bytes(salt, sizeof(salt)) != 1)
		return anc_error_set(err, ANC_EINTERNAL,
		    "keygen: the system random generator failed");
	/* "anc_" + base32 of the 32 bytes, as two anchors' worth of
	 * characters (26 + 26 = 52). */
	memcpy(key, "anc_", 4);
	anc_anchor_format(raw, key + 4);
	anc_anchor_format(raw + 16, key + 4 + ANC_ANCHOR_LEN);
	size_t klen = strlen(key);
	memcpy(buf, salt, 16);
	memcpy(buf + 16, key, klen);
	int rv = anc_sha256(buf, 16 + klen, md);
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rv != ANC_OK)
		return anc_error_set(err, rv, "keygen: out of memory");
	tohex(salt, sizeof(salt), salt_hex);
	tohex(md, sizeof(md), sha256_hex);
	return ANC_OK;
}

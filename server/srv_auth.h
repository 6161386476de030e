/*
 * srv_auth.h — API keys and roles.
 *
 * Keys are configured as {id, role, salt, sha256}: sha256 is SHA-256(salt ||
 * key) in hex, salt is 16 random bytes in hex. The key itself is never
 * stored by the server. API keys are 32 random bytes (see
 * anc_auth_keygen), so a salted SHA-256 is enough: there is no password to
 * guess, and a slow KDF would only add latency to every request.
 *
 * Checking is constant-time: every configured key's hash is computed and
 * compared with CRYPTO_memcmp, whatever matched before, so timing says
 * nothing about which key or how much of it was right.
 *
 * Roles are ordered: read < write < admin.
 *   (none) ping: liveness probes need no key; it reveals only the version
 *   read   info, query, resolve, drift, contract check
 *   write  + upsert, delete
 *   admin  + collection_create, contract_register, contract_promote,
 *            contract_retire
 * A missing or unknown key is UNAUTHENTICATED, a key whose role is too weak
 * PERMISSION_DENIED; both are decided before the request touches the
 * store, so neither reveals whether a collection exists.
 *
 * Thread safety: an anc_auth is immutable once the server starts; any
 * number of workers may check against it at once.
 */
#ifndef ANC_SRV_AUTH_H
#define ANC_SRV_AUTH_H

#include <stdint.h>

#include "anc_error.h"
#include "anc_proto.h"

typedef enum {
	ANC_ROLE_NONE = 0,
	ANC_ROLE_READ = 1,
	ANC_ROLE_WRITE = 2,
	ANC_ROLE_ADMIN = 3
} anc_role;

#define ANC_AUTH_MAX_KEYS 1024
#define ANC_KEY_ID_MAX 64

typedef struct anc_auth anc_auth;

int anc_auth_create(anc_auth **out, anc_error *err);
void anc_auth_free(anc_auth *a); /* NULL is fine */

/* Add a key from its configured form (hex strings). ANC_EINVAL naming the
 * bad field; ANC_EEXIST for a duplicate id. */
int anc_auth_add(anc_auth *a, const char *id, const char *role,
                 const char *salt_hex, const char *sha256_hex,
                 anc_error *err);

/* Number of keys configured. */
uint32_t anc_auth_count(const anc_auth *a);

/* The role an operation needs. */
anc_role anc_op_role(anc_op op);
const char *anc_role_name(anc_role r);
int anc_role_parse(const char *s); /* -1 if unknown */

/* May a request for op carrying key (NULL if none) proceed? a == NULL or a
 * with no keys means authentication is off. ANC_EUNAUTHENTICATED or
 * ANC_EPERMISSION with a message that names the op and the role needed,
 * never the key. */
int anc_auth_authorize(const anc_auth *a, anc_op op, const char *key,
                       anc_error *err);
/* The same for an act that needs a role of its own (drift --set needs
 * admin where a drift report needs read); what names it in messages. */
int anc_auth_require(const anc_auth *a, anc_role need, const char *what,
                     const char *key, anc_error *err);

/* Make a new key: 32 random bytes, printed as "anc_" + 52 base32 chars,
 * plus a fresh salt and the hash, all as NUL-terminated strings. */
int anc_auth_keygen(char key[64], char salt_hex[33], char sha256_hex[65],
                    anc_error *err);

#endif /* ANC_SRV_AUTH_H */

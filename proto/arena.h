/*
 * arena.h — private to proto/: the bump allocator that owns everything a
 * decoded anc_req / anc_resp points to.
 *
 * A decoded message is read once, used, and dropped as a whole, so one
 * arena per message replaces hundreds of small mallocs and makes the free
 * function trivially correct on every error path: free the arena. Chunks
 * grow geometrically; a request larger than the next chunk gets a chunk of
 * its own. Every block is 16-byte aligned (vectors are handed to faiss).
 *
 * Not thread-safe; an arena belongs to one message.
 */
#ifndef ANC_PROTO_ARENA_H
#define ANC_PROTO_ARENA_H

#include <stddef.h>

typedef struct pa_arena pa_arena;

/* NULL when out of memory. */
pa_arena *pa_arena_new(void);

/* Free every block of a; NULL is fine. */
void pa_arena_free(pa_arena *a);

/* size bytes, zeroed, 16-byte aligned; NULL when out of memory or when the
 * size overflows. size 0 returns a valid unique pointer. */
void *pa_alloc(pa_arena *a, size_t size);

/* n * size bytes with the multiplication checked; as pa_alloc. */
void *pa_calloc(pa_arena *a, size_t n, size_t size);

/* Copy n bytes of s and add a NUL. NULL when out of memory. */
char *pa_strndup(pa_arena *a, const char *s, size_t n);

#endif /* ANC_PROTO_ARENA_H */

/* What src/ files share and the public never sees. Internal names start
 * with cnet__; internal functions assert their preconditions, only the
 * public functions validate. */
#ifndef CNET_INTERNAL_H
#define CNET_INTERNAL_H

#include "cnet.h"

#include <errno.h>

#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define container_of(ptr, type, member)                                        \
  ((type *)((char *)(ptr)-offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CNET__ERR(e) (-(e)) /* errno to libuv code (uv.h undefines UV__ERR) */

/* uv_buf_init, inlined (libuv's is a call into the shared library). */
static inline uv_buf_t cnet__buf(const char *base, size_t len) {
  uv_buf_t b = {.base = (char *)base, .len = len};
  return b;
}

#define CNET__DEFAULT_HWM 16384
#define CNET__DEFAULT_BACKLOG 511
#define CNET__SLAB_SIZE 65536

/* ---- allocation ---------------------------------------------------------- */

/* Every allocation goes through cnet_replace_allocator's functions. */
typedef struct {
  cnet_malloc_func malloc;
  cnet_realloc_func realloc;
  cnet_calloc_func calloc;
  cnet_free_func free;
} cnet__allocator_t;

extern cnet__allocator_t cnet__allocator;

static inline void *cnet__malloc(size_t n) {
  return cnet__allocator.malloc(n);
}
static inline void *cnet__calloc(size_t n, size_t size) {
  return cnet__allocator.calloc(n, size);
}
static inline void *cnet__realloc(void *p, size_t n) {
  return cnet__allocator.realloc(p, n);
}
static inline void cnet__free(void *p) {
  cnet__allocator.free(p);
}

/* Out of memory where the API has no way to report it (deferring an event):
 * print one line and abort, rather than lose an event silently. */
void *cnet__xmalloc(size_t n);

/* ---- emitter (emitter.c) ------------------------------------------------- */

typedef void (*cnet__any_fn)(void); /* any listener type; cast back to call */

typedef struct {
  cnet__any_fn fn; /* NULL marks a removed slot */
  void *ctx;
  uint8_t type;
  uint8_t once;
  uint8_t prepend; /* added by prepend during an emit: moved first later */
} cnet__listener_t;

#define CNET__INLINE_LISTENERS 2

typedef struct {
  union { /* inline_ while cap is CNET__INLINE_LISTENERS, then heap */
    cnet__listener_t inline_[CNET__INLINE_LISTENERS];
    cnet__listener_t *heap;
  } u;
  uint16_t len, cap;
  uint16_t emitting; /* nesting depth of running emits */
  uint16_t dead;     /* removed slots waiting for compaction */
} cnet__emitter_t;

typedef void (*cnet__invoke_fn)(void *self, cnet__any_fn fn,
                                const cnet_event_t *ev, void *ctx);

void cnet__emitter_init(cnet__emitter_t *em);
void cnet__emitter_free(cnet__emitter_t *em);
int cnet__emitter_add(cnet__emitter_t *em, cnet_event_type_t type,
                      cnet__any_fn fn, void *ctx, bool once, bool prepend);
void cnet__emitter_remove(cnet__emitter_t *em, cnet_event_type_t type,
                          cnet__any_fn fn, void *ctx);
void cnet__emitter_remove_type(cnet__emitter_t *em, cnet_event_type_t type);
size_t cnet__emitter_count(const cnet__emitter_t *em, cnet_event_type_t type);
/* Calls every listener of ev->type; returns how many ran. The caller holds
 * a reference on self for the duration. */
size_t cnet__emit(cnet__emitter_t *em, void *self, const cnet_event_t *ev,
                  cnet__invoke_fn invoke);

/* ---- per-loop state and the tick queue (loop.c) -------------------------- */

typedef struct cnet__tick_s cnet__tick_t;
typedef void (*cnet__tick_fn)(cnet__tick_t *t);

/* A deferred call: Node's process.nextTick. Ticks come from a per-loop free
 * list, so deferring costs no allocation once the loop is warm. */
struct cnet__tick_s {
  cnet__tick_t *next;
  cnet__tick_fn fn;
  void (*done)(void *obj); /* drops the tick's reference on obj after fn */
  void *obj;
  void *p1, *p2, *p3;
  int status;
};

typedef struct cnet__loop_s {
  uv_loop_t *uv;
  char *text;       /* decoded 'data' for sockets with an encoding */
  size_t text_cap;
  uv_idle_t idle;   /* runs ticks queued from outside any cnet callback */
  unsigned refs;    /* live cnet objects on this loop, plus callbacks */
  unsigned depth;   /* nesting of cnet callbacks now running */
  cnet__tick_t *head, *tail, *free_ticks;
  char *slab;       /* the loop-wide read buffer (Node's slab) */
  uv_write_t *free_wreqs; /* write requests to reuse, linked by ->data */
  unsigned n_free_wreqs;
  /* sockets whose read filled the slab, retained; reading again on the
   * loop's next turn (stream.c, yield_after_full_read) */
  cnet_socket_t **yielded;
  unsigned n_yielded, yielded_cap;
  struct cnet__loop_s *next; /* the process-wide registry */
} cnet__loop_t;

cnet__loop_t *cnet__loop_get(uv_loop_t *uv); /* takes a reference; NULL:OOM */
void cnet__loop_put(cnet__loop_t *L);
/* Bracket every libuv callback cnet receives: leaving the outermost one
 * drains the tick queue, the way Node drains nextTick after a callback. */
void cnet__loop_drain(cnet__loop_t *L); /* runs the tick queue */
void cnet__loop_wake(cnet__loop_t *L);  /* come round once more, no wait */
static inline void cnet__loop_enter(cnet__loop_t *L) {
  L->depth++;
  L->refs++; /* the state outlives whatever the callback frees */
}
static inline void cnet__loop_leave(cnet__loop_t *L) {
  assert(L->depth > 0);
  if (L->depth == 1 && L->head != NULL)
    cnet__loop_drain(L); /* still counted as inside: ticks queued now run */
  L->depth--;
  if (L->refs > 1)
    L->refs--;
  else
    cnet__loop_put(L);
}
cnet__tick_t *cnet__tick_new(cnet__loop_t *L, cnet__tick_fn fn, void *obj);
void cnet__tick_push(cnet__loop_t *L, cnet__tick_t *t);

/* ---- errors (error.c) ----------------------------------------------------- */

/* The five builders of lib/internal/errors.js. */
void cnet__error_errno(cnet_error_t *e, int err, const char *syscall);
/* details: Node's " - Local (<details>)" part, or NULL. */
void cnet__error_host_port(cnet_error_t *e, int err, const char *syscall,
                           const char *address, int port,
                           const char *details);
void cnet__error_listen(cnet_error_t *e, int err, const char *address,
                        int port);
void cnet__error_dns(cnet_error_t *e, int err, const char *hostname);
void cnet__error_node(cnet_error_t *e, int code, ...);
/* An error with Node's code for err and a message of its own. */
void cnet__error_custom(cnet_error_t *e, int err, const char *message);
/* Record a synchronous failure for cnet_last_error() and return its code. */
int cnet__fail(int code, ...);
int cnet__fail_errno(int err, const char *syscall);
int cnet__fail_error(const cnet_error_t *e);
void cnet__unhandled_error(const char *what, const cnet_error_t *err);
/* ERR_SOCKET_BAD_PORT's "Received ..." part for an int. */
int cnet__check_port(int port, const char *name);

/* ---- addresses (ip.c / address.c) ----------------------------------------- */

typedef union {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} cnet__sockaddr_t;

/* Text, port and family of a sockaddr (family 4 or 6). */
void cnet__address_from_sockaddr(cnet_address_t *out, const struct sockaddr *sa);
/* A literal IP and a port into a sockaddr; 0, or UV_EINVAL if host is not
 * an IP literal. */
int cnet__sockaddr_from_ip(cnet__sockaddr_t *out, const char *ip, int port);
/* Checks a Unix socket path: UV_ENAMETOOLONG past sun_path, UV_EINVAL for
 * an empty one. */
int cnet__check_pipe_path(const char *path, size_t len);
/* path as text for messages: an abstract name's NUL bytes shown as '@'. */
void cnet__pipe_display(char *out, const char *path, size_t len);
/* SocketAddress / BlockList: the family argument (0 or 4: 4, 6: 6, else
 * 0) and the text of an address of that family into 4 or 16 bytes. */
#define CNET__IP6_PART_MAX 40 /* what uv_ip6_addr keeps before a "%zone" */
int cnet__family_arg(int family);
bool cnet__ip_pton(int family, const char *text, unsigned char *out);

/* ---- the socket calls libuv 1.44 cannot make (os_socket.c) ---------------
 * Each returns a descriptor or a negative libuv code. */

int cnet__set_reuse_port(int fd);
int cnet__listen_tcp(const cnet__sockaddr_t *sa, bool ipv6_only,
                     bool reuse_port, int backlog);
int cnet__listen_unix(const char *path, size_t len, bool readable_all,
                      bool writable_all, int backlog);
int cnet__listen_adopt(int fd, int backlog, bool *is_unix);
int cnet__dup(int fd);
int cnet__connect_unix(const char *path, size_t len, int *fd_out);
int cnet__accept(int listen_fd);

/* ---- name lookup (lookup.c) ---------------------------------------------- */

typedef struct cnet__lookup_s cnet__lookup_t;
/* err 0 with an addrinfo list (freed by the caller with uv_freeaddrinfo),
 * or a negative UV_EAI_* code. Called later, from the loop. */
typedef void (*cnet__lookup_cb)(cnet__lookup_t *req, int err,
                                struct addrinfo *res, void *data);
/* Starts a getaddrinfo for host with family 0/4/6 and getaddrinfo hints
 * (AI_*). Returns 0 or an error; the callback runs once unless this fails. */
int cnet__lookup(cnet__loop_t *L, const char *host, int family, int hints,
                 cnet__lookup_cb cb, void *data);

/* ---- socket and stream (socket.c, stream.c) ------------------------------ */

enum {
  S_HANDLE_OPEN = 1u << 0, /* h is initialised and not yet closed */
  S_CONNECTING = 1u << 1,
  S_CONNECTED = 1u << 2,
  S_DESTROYED = 1u << 3,
  S_READING = 1u << 4,  /* uv_read_start is active */
  S_FLOWING = 1u << 5,  /* resume()d or has a 'data' listener */
  S_PAUSED = 1u << 6,   /* pause()d: flowing is explicitly false */
  S_EOF = 1u << 7,      /* the peer's FIN has been read */
  S_END_EMITTED = 1u << 8,
  S_ENDING = 1u << 9,   /* end() was called: no more writes */
  S_SHUTDOWN = 1u << 10, /* FIN requested from libuv */
  S_FINISHED = 1u << 11, /* 'finish' emitted */
  S_NEED_DRAIN = 1u << 12,
  S_HALF_OPEN = 1u << 13, /* allowHalfOpen */
  S_HAD_ERROR = 1u << 14,
  S_ERROR_EMITTED = 1u << 15,
  S_PIPE = 1u << 16,    /* IPC (uv_pipe_t), else TCP */
  S_UNREF = 1u << 17,
  S_NO_DELAY = 1u << 18,
  S_KEEP_ALIVE = 1u << 19,
  S_USER_REF = 1u << 20, /* cnet_socket_new's reference, for _free */
  S_REMOTE_KNOWN = 1u << 21,
  S_COUNTED = 1u << 22, /* counted in server->connections */
  S_AUTO_END = 1u << 23, /* ended by the automatic end() after 'end' */
  S_BUSY = 1u << 24,     /* read something since the write queue emptied */
  S_IDLE_CHECK = 1u << 25, /* a graceful close's idle check is queued */
  S_RESET = 1u << 26,     /* resetAndDestroy: close with RST */
  S_TCP_ONLY = 1u << 27,  /* allocated with room for a uv_tcp_t only */
};

/* One connection attempt of an autoselecting connect (connect.c): Node's
 * autoSelectFamilyAttemptedAddresses entry and, if it failed, its error. */
typedef struct cnet__attempt_record_s {
  char address[CNET_ADDR_MAX + 8]; /* "ip:port" */
  bool failed;
  cnet_error_t error;
} cnet__attempt_record_t;

/* What only some sockets use, allocated on first use so that a plain
 * accepted connection does not pay for it (issue 6: bytes per idle
 * connection): a connect in progress and its attempt log, end()'s
 * callbacks, a pending error, bytes read before anyone consumed them, the
 * cached peer address, keep-alive's delay, the decoder of setEncoding, the
 * onread option, and the idle timer of setTimeout. */
typedef struct cnet__channel_s cnet__channel_t;
typedef struct cnet__connect_s cnet__connect_t;
typedef struct cnet__end_cb_s cnet__end_cb_t;

typedef struct cnet__extra_s {
  cnet__channel_t *channel; /* a channel's frames and sends (channel.c) */
  cnet__connect_t *connect; /* while connecting (connect.c) */
  cnet__attempt_record_t *attempts;
  unsigned n_attempts;
  uint32_t keep_alive_delay; /* seconds */
  cnet__end_cb_t *end_cbs;   /* end()'s callbacks, in order */
  cnet_error_t *pending_error; /* to emit before 'close' */
  char *unread;              /* bytes read before anyone consumed them */
  size_t unread_len;
  cnet__sockaddr_t remote;   /* cached when first known (S_REMOTE_KNOWN) */
  cnet_decoder_t decoder;
  cnet_onread_t onread;
  uv_timer_t timer;     /* setTimeout's; initialised on first use */
  uint64_t timeout;     /* the msecs given (socket.timeout); 0: none */
  uint64_t last_activity; /* uv_now() of the last read or write */
  size_t last_queued;   /* bytes queued when the timer last looked */
  bool decoding, has_onread;
  bool timer_open;      /* timer initialised and not closed */
  bool timeout_fired;   /* fired; waits for activity to re-arm */
} cnet__extra_t;

typedef struct cnet__chunk_s cnet__chunk_t;
typedef struct cnet__pipe_s cnet__pipe_t;

struct cnet_socket_s {
  cnet__loop_t *loop;
  cnet__emitter_t emitter;
  uint32_t refs; /* user + open handle + running emits + pending requests */
  uint32_t flags;
  void *data;
  cnet_server_t *server;
  cnet__chunk_t *wq_head, *wq_tail; /* queued writes, oldest first */
  size_t writable_length;
  uint64_t bytes_read, bytes_written;
  cnet__pipe_t *pipes;    /* pipes whose source this is */
  cnet__pipe_t *drain_waiters; /* pipes paused until this socket drains */
  /* accepted: the server's list of open connections (for close_idle and
   * the graceful-close deadline) */
  cnet_socket_t *conn_prev, *conn_next;
  cnet__extra_t *extra;  /* what few sockets use; NULL until then */
  uint32_t hwm;
  uint16_t wq_inflight;  /* chunks from head inside uv_write */
  uint16_t corked;       /* cork() depth */
  /* Last, so that a socket known to be TCP for life (S_TCP_ONLY: accepted
   * by a TCP server) is allocated without the larger uv_pipe_t's tail.
   * Never moves while open (libuv's rule). */
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
};

/* References: inline, with the freeing out of line (and in another file,
 * so that gcc -O3 does not see the free in the callers and warn
 * -Wuse-after-free about a reference it cannot count). */
void cnet__socket_free_unreferenced(cnet_socket_t *s);
static inline void cnet__socket_retain(cnet_socket_t *s) {
  s->refs++;
}
static inline void cnet__socket_release(cnet_socket_t *s) { /* last touch */
  assert(s->refs > 0);
  if (--s->refs == 0)
    cnet__socket_free_unreferenced(s);
}
void cnet__socket_emit_to_listeners(cnet_socket_t *s, const cnet_event_t *ev);
static inline void cnet__socket_emit(cnet_socket_t *s, const cnet_event_t *ev) {
  if (s->emitter.len != 0) /* a pipe's source often has no listener */
    cnet__socket_emit_to_listeners(s, ev);
}
void cnet__socket_emit_simple(cnet_socket_t *s, cnet_event_type_t type);
/* Queue a tick for s; fn runs with s alive, which is released after. */
cnet__tick_t *cnet__socket_defer(cnet_socket_t *s, cnet__tick_fn fn, void *p1,
                                 void *p2, int status);
/* The connect finished: remote is the peer (NULL for IPC), the handle is
 * open on the connected descriptor. Emits 'connect' and 'ready'. */
void cnet__socket_connected(cnet_socket_t *s, const cnet__sockaddr_t *remote);
/* connect.c: stop a connect in progress (destroy). */
void cnet__connect_cancel(cnet_socket_t *s);
/* destroy(err) with an error built in place (copied). */
void cnet__socket_destroy_errno(cnet_socket_t *s, int err, const char *sys);

/* stream.c: the Duplex core. */
void cnet__stream_connected(cnet_socket_t *s); /* flush, maybe read */
void cnet__stream_maybe_read(cnet_socket_t *s);
void cnet__stream_read_yielded(cnet__loop_t *L); /* on the loop's next turn */
void cnet__stream_on_destroy(cnet_socket_t *s); /* fail queued writes */
void cnet__stream_reset(cnet_socket_t *s);      /* for a new connect() */
void cnet__stream_flush(cnet_socket_t *s);
void cnet__stream_free(cnet_socket_t *s);

/* timeout.c: setTimeout's idle timer. Activity costs a load and a store
 * (the time of the last read or write); the timer re-checks when it fires. */
void cnet__timeout_touch_slow(cnet_socket_t *s);
static inline void cnet__timeout_touch(cnet_socket_t *s) {
  if (s->extra != NULL && s->extra->timeout != 0)
    cnet__timeout_touch_slow(s);
}
void cnet__timeout_stop(cnet_socket_t *s); /* destroy: close the timer */

/* channel.c: a socket that carries messages and descriptors. */
int cnet__channel_attach(cnet_socket_t *s); /* 0 or UV_ENOMEM */
bool cnet__is_channel(const cnet_socket_t *s);
void cnet__channel_input(cnet_socket_t *s, const char *base, size_t n);
void cnet__channel_on_destroy(cnet_socket_t *s); /* fail waiting sends */
void cnet__channel_free(cnet_socket_t *s);

/* socket.c: the extra part, allocated on first use (NULL: out of memory). */
cnet__extra_t *cnet__socket_extra(cnet_socket_t *s);

/* socket.c: used by server.c for accepted sockets. */
cnet_socket_t *cnet__socket_alloc(cnet__loop_t *L, bool half_open,
                                  size_t hwm, bool tcp_only);
void cnet__socket_apply_options(cnet_socket_t *s);

/* ---- server (server.c, accept.c) ----------------------------------------- */

enum {
  SV_LISTENING = 1u << 0,
  SV_USER_REF = 1u << 1,
  SV_UNREF = 1u << 2,
  SV_RESOLVING = 1u << 3, /* listen(host) waits for its lookup */
  SV_PIPE = 1u << 4,
  SV_GRACEFUL = 1u << 5, /* close_gracefully: end connections as they idle */
};

/* The listening socket. cnet makes it (os_socket.c) and watches it with a
 * uv_poll_t rather than uv_listen(): libuv 1.44 offers no way to stop
 * calling accept() when it fails for want of descriptors, and spins. Kept
 * apart from the server so that close() can leave it to finish closing
 * while the server listens again (CL-06). */
typedef struct cnet__acceptor_s {
  uv_poll_t poll;     /* readable: connections wait in the backlog */
  uv_timer_t backoff; /* after a resource failure: when to try again */
  cnet_server_t *srv; /* NULL once detached by close() */
  int fd;
  int held_fd;        /* accepted, waiting for memory to become a socket */
  unsigned backoff_ms; /* 0 while accepting normally */
  uint8_t handles;    /* open libuv handles; freed when none is left */
  bool backing_off;
} cnet__acceptor_t;

struct cnet_server_s {
  cnet__loop_t *loop;
  cnet__emitter_t emitter;
  uint32_t refs; /* user + accepted sockets + running emits + ticks */
  uint32_t flags;
  uint32_t gen; /* bumped by listen and close: stale ticks see a change */
  cnet__acceptor_t *lh;
  size_t connections;
  cnet_socket_t *conns; /* the open ones, newest first */
  uint64_t accept_errors;
  uint64_t blocked; /* connections the block_list turned away */
  cnet_server_options_t opts;
  void *data;
  char *path; /* the IPC name we bound (exact bytes), NULL otherwise */
  size_t path_len;
  uv_timer_t *deadline; /* close_gracefully's, while it runs */
};

void cnet__server_retain(cnet_server_t *srv);
void cnet__server_release(cnet_server_t *srv);
void cnet__server_emit(cnet_server_t *srv, const cnet_event_t *ev);
void cnet__server_defer_error(cnet_server_t *srv, const cnet_error_t *err);
/* An accepted socket was destroyed: count it out, maybe emit 'close'. */
void cnet__server_connection_gone(cnet_socket_t *s);

/* accept.c: start watching fd (a listening socket); 0 or an error, and then
 * the descriptor is still the caller's. */
int cnet__acceptor_start(cnet_server_t *srv, int fd);
/* Stop and close the listener (and its descriptor) in the background. */
void cnet__acceptor_close(cnet__acceptor_t *lh);
void cnet__acceptor_set_ref(cnet__acceptor_t *lh, bool ref);
/* Calls fn on each open connection srv accepted; fn may end or destroy
 * that socket and nothing else. */
void cnet__server_each(cnet_server_t *srv,
                       void (*fn)(cnet_socket_t *s, void *arg), void *arg);

/* A socket's write queue emptied with nothing read since: under a graceful
 * close, the server ends it (on the next tick, so that a reply made of
 * several writes in one callback is not cut). */
void cnet__server_connection_idle(cnet_socket_t *s);
static inline void cnet__stream_went_idle(cnet_socket_t *s) {
  s->flags &= ~S_BUSY;
  if (s->server != NULL && (s->server->flags & SV_GRACEFUL))
    cnet__server_connection_idle(s);
}

#endif /* CNET_INTERNAL_H */

/* net.Server: listen over TCP and IPC, accept, close, connection counting.
 *
 * The listening handle is allocated apart from the server: close() detaches
 * it and lets libuv finish closing it in the background, so the same server
 * may listen again at once (CL-06, LE-02) -- the docs' EADDRINUSE retry. */
#include "internal.h"

#include <stdio.h>
#include <unistd.h>

enum {
  SV_LISTENING = 1u << 0,
  SV_USER_REF = 1u << 1,
  SV_UNREF = 1u << 2,
  SV_RESOLVING = 1u << 3, /* listen(host) waits for its lookup */
  SV_PIPE = 1u << 4,
};

typedef struct {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  cnet_server_t *srv; /* NULL once detached by close() */
} listen_handle_t;

struct cnet_server_s {
  cnet__loop_t *loop;
  cnet__emitter_t emitter;
  uint32_t refs; /* user + accepted sockets + running emits + ticks */
  uint32_t flags;
  uint32_t gen; /* bumped by listen and close: stale ticks see a change */
  listen_handle_t *lh;
  size_t connections;
  cnet_server_options_t opts;
  void *data;
  char *path; /* the IPC path we bound, unlinked by close */
  size_t path_len;
};

typedef struct {
  cnet_server_t *srv;
  uint32_t gen;
  int port, backlog;
  bool ipv6_only;
  char host[CNET_HOST_MAX];
} listen_lookup_t;

/* ---- references, events, ticks ----------------------------------------- */

static void server_invoke(void *self, cnet__any_fn fn, const cnet_event_t *ev,
                          void *ctx) {
  ((cnet_server_listener)fn)((cnet_server_t *)self, ev, ctx);
}

void cnet__server_retain(cnet_server_t *srv) {
  srv->refs++;
}

/* Releasing a reference is the last time a function touches the object. */
void cnet__server_release(cnet_server_t *srv) {
  cnet__loop_t *L = srv->loop;

  assert(srv->refs > 0);
  if (--srv->refs != 0)
    return;
  assert(srv->lh == NULL);
  cnet__emitter_free(&srv->emitter);
  free(srv->path);
  free(srv);
  cnet__loop_put(L);
}

static void server_emit(cnet_server_t *srv, const cnet_event_t *ev) {
  srv->refs++;
  cnet__emit(&srv->emitter, srv, ev, server_invoke);
  cnet__server_release(srv);
}

static void release_tick_ref(void *obj) {
  cnet__server_release(obj);
}

static cnet__tick_t *server_defer(cnet_server_t *srv, cnet__tick_fn fn,
                                  void *p1) {
  cnet__tick_t *t = cnet__tick_new(srv->loop, fn, srv);

  t->done = release_tick_ref;
  t->p1 = p1;
  t->status = (int)srv->gen;
  srv->refs++;
  cnet__tick_push(srv->loop, t);
  return t;
}

static void run_error(cnet__tick_t *t) {
  cnet_server_t *srv = t->obj;
  cnet_error_t *err = t->p1;
  cnet_event_t ev = {.type = CNET_EV_ERROR};

  ev.error = err;
  if (cnet__emitter_count(&srv->emitter, CNET_EV_ERROR) == 0)
    cnet__unhandled_error("server", err);
  else
    server_emit(srv, &ev);
  free(err);
}

static void defer_error(cnet_server_t *srv, const cnet_error_t *err) {
  cnet_error_t *copy = cnet__xmalloc(sizeof(*copy));

  *copy = *err;
  server_defer(srv, run_error, copy);
}

/* ---- accepting ---------------------------------------------------------- */

static void accept_one(cnet_server_t *srv, listen_handle_t *lh) {
  const cnet_server_options_t *o = &srv->opts;
  cnet__loop_t *L = srv->loop;
  cnet_socket_t *s = cnet__socket_alloc(L, o->allow_half_open,
                                        o->high_water_mark);
  cnet_event_t ev = {.type = CNET_EV_CONNECTION};
  bool ipc = (srv->flags & SV_PIPE) != 0;
  int err;

  if (s == NULL)
    return; /* the connection waits in the backlog for the next round */
  L->refs++;
  err = ipc ? uv_pipe_init(L->uv, &s->h.pipe, 0)
            : uv_tcp_init(L->uv, &s->h.tcp);
  s->refs = 1; /* the open handle's */
  s->flags |= S_HANDLE_OPEN | (ipc ? S_PIPE : 0);
  if (err == 0)
    err = uv_accept(&lh->h.stream, &s->h.stream);
  if (err != 0) {
    cnet_socket_destroy(s, NULL); /* nobody listens: closes quietly */
    return;
  }
  s->server = srv;
  srv->refs++;
  srv->connections++;
  s->flags |= S_CONNECTED | S_COUNTED;
  if (!ipc) { /* the peer, kept past 'close' as for connect() (ST-06) */
    int len = sizeof(s->remote);
    if (uv_tcp_getpeername(&s->h.tcp, &s->remote.sa, &len) == 0)
      s->flags |= S_REMOTE_KNOWN;
  }
  if (o->no_delay)
    s->flags |= S_NO_DELAY;
  if (o->keep_alive)
    s->flags |= S_KEEP_ALIVE;
  s->keep_alive_delay = o->keep_alive_initial_delay / 1000; /* SV-03 */
  if (o->pause_on_connect)
    s->flags |= S_PAUSED; /* SV-07: not one byte read until resume() */
  cnet__socket_apply_options(s); /* SV-05/06: before 'connection' */
  ev.connection = s;
  cnet__socket_retain(s);
  server_emit(srv, &ev);
  cnet__stream_maybe_read(s);
  cnet__socket_release(s);
}

static void on_connection(uv_stream_t *stream, int status) {
  listen_handle_t *lh = container_of(stream, listen_handle_t, h.stream);
  cnet_server_t *srv = lh->srv;
  cnet__loop_t *L = srv->loop;
  cnet_error_t err;

  cnet__loop_enter(L);
  srv->refs++;
  if (status == 0) {
    accept_one(srv, lh);
  } else if (status != UV_EMFILE && status != UV_ENFILE &&
             status != UV_ENOBUFS && status != UV_ENOMEM &&
             status != UV_ECONNABORTED) {
    cnet__error_errno(&err, status, "accept");
    defer_error(srv, &err);
  }
  /* XXX(servers issue): transient accept failures get their own event,
   * counter and back-off; libuv already keeps them from spinning. */
  cnet__server_release(srv);
  cnet__loop_leave(L);
}

/* ---- listening ---------------------------------------------------------- */

static void on_listen_handle_closed(uv_handle_t *h) {
  free(container_of(h, listen_handle_t, h.handle));
}

static void detach_handle(cnet_server_t *srv) {
  listen_handle_t *lh = srv->lh;

  srv->lh = NULL;
  srv->flags &= ~SV_LISTENING;
  lh->srv = NULL;
  uv_close(&lh->h.handle, on_listen_handle_closed);
  if (srv->path != NULL) { /* CL-07: we made the file, we remove it */
    if (srv->path[0] != '\0')
      unlink(srv->path);
    free(srv->path);
    srv->path = NULL;
  }
}

static void run_listening(cnet__tick_t *t) {
  cnet_server_t *srv = t->obj;
  cnet_event_t ev = {.type = CNET_EV_LISTENING};

  if ((uint32_t)t->status == srv->gen && (srv->flags & SV_LISTENING))
    server_emit(srv, &ev);
}

static listen_handle_t *handle_new(cnet_server_t *srv) {
  listen_handle_t *lh = calloc(1, sizeof(*lh));

  if (lh != NULL) {
    lh->srv = srv;
    srv->lh = lh;
  }
  return lh;
}

/* The handle is made; the socket may not be bound: LE-04, bind errors
 * surface from listen(). */
static int start_listening(cnet_server_t *srv, int backlog) {
  int err = uv_listen(&srv->lh->h.stream,
                      backlog > 0 ? backlog : CNET__DEFAULT_BACKLOG,
                      on_connection);

  if (err != 0)
    return err;
  srv->flags |= SV_LISTENING;
  if (srv->flags & SV_UNREF)
    uv_unref(&srv->lh->h.handle);
  server_defer(srv, run_listening, NULL);
  return 0;
}

static int bind_tcp(cnet_server_t *srv, const cnet__sockaddr_t *sa,
                    bool ipv6_only, int backlog) {
  listen_handle_t *lh = handle_new(srv);
  int err;

  if (lh == NULL)
    return UV_ENOMEM;
  srv->flags &= ~SV_PIPE;
  err = uv_tcp_init_ex(srv->loop->uv, &lh->h.tcp, sa->sa.sa_family);
  if (err != 0) {
    srv->lh = NULL;
    free(lh);
    return err;
  }
  err = uv_tcp_bind(&lh->h.tcp, &sa->sa,
                    ipv6_only && sa->sa.sa_family == AF_INET6
                        ? UV_TCP_IPV6ONLY
                        : 0);
  if (err == 0)
    err = start_listening(srv, backlog);
  if (err != 0)
    detach_handle(srv);
  return err;
}

/* LE-01: the error comes after listen() returns; listening stays false and
 * 'close' is not emitted. */
static void listen_failed(cnet_server_t *srv, int err, const char *address,
                          int port) {
  cnet_error_t e;

  cnet__error_listen(&e, err, address, port);
  defer_error(srv, &e);
}

/* LS-06: no host means "::" (dual-stack), or "0.0.0.0" where the machine
 * has no IPv6. */
static void listen_any(cnet_server_t *srv, int port, bool ipv6_only,
                       int backlog) {
  cnet__sockaddr_t sa;
  int err;

  cnet__sockaddr_from_ip(&sa, "::", port);
  err = bind_tcp(srv, &sa, ipv6_only, backlog);
  if (err == UV_EAFNOSUPPORT || err == UV_EADDRNOTAVAIL) {
    cnet__sockaddr_from_ip(&sa, "0.0.0.0", port);
    err = bind_tcp(srv, &sa, false, backlog);
    if (err != 0)
      listen_failed(srv, err, "0.0.0.0", port);
  } else if (err != 0) {
    listen_failed(srv, err, "::", port);
  }
}

static void listen_ip(cnet_server_t *srv, const char *ip, int port,
                      bool ipv6_only, int backlog) {
  cnet__sockaddr_t sa;
  int err;

  cnet__sockaddr_from_ip(&sa, ip, port);
  err = bind_tcp(srv, &sa, ipv6_only, backlog);
  if (err != 0)
    listen_failed(srv, err, ip, port);
}

static void on_listen_lookup(cnet__lookup_t *req, int status,
                             struct addrinfo *res, void *data) {
  listen_lookup_t *ll = data;
  cnet_server_t *srv = ll->srv;
  cnet_address_t a;
  cnet_error_t err;

  (void)req;
  if (ll->gen == srv->gen) { /* CL-05: else close() came first */
    srv->flags &= ~SV_RESOLVING;
    if (status != 0 || res == NULL) {
      cnet__error_dns(&err, status != 0 ? status : UV_EAI_NONAME, ll->host);
      defer_error(srv, &err);
    } else {
      cnet__address_from_sockaddr(&a, res->ai_addr);
      listen_ip(srv, a.address, ll->port, ll->ipv6_only, ll->backlog);
    }
  }
  if (res != NULL)
    uv_freeaddrinfo(res);
  free(ll);
  cnet__server_release(srv);
}

static int listen_name(cnet_server_t *srv, const cnet_listen_options_t *o) {
  listen_lookup_t *ll = calloc(1, sizeof(*ll));
  int err;

  if (ll == NULL)
    return cnet__fail(UV_ENOMEM);
  ll->srv = srv;
  ll->gen = srv->gen;
  ll->port = o->port;
  ll->backlog = o->backlog;
  ll->ipv6_only = o->ipv6_only;
  snprintf(ll->host, sizeof(ll->host), "%s", o->host);
  err = cnet__lookup(srv->loop, o->host, 0, on_listen_lookup, ll);
  if (err != 0) {
    free(ll);
    return cnet__fail_errno(err, "getaddrinfo");
  }
  srv->refs++;
  srv->flags |= SV_RESOLVING;
  return 0;
}

static int listen_pipe(cnet_server_t *srv, const cnet_listen_options_t *o,
                       size_t len) {
  listen_handle_t *lh;
  int mode = (o->readable_all ? UV_READABLE : 0) |
             (o->writable_all ? UV_WRITABLE : 0);
  int err;

  if ((srv->path = malloc(len + 1)) == NULL || (lh = handle_new(srv)) == NULL)
    return cnet__fail(UV_ENOMEM);
  memcpy(srv->path, o->path, len);
  srv->path[len] = '\0';
  srv->path_len = len;
  srv->flags |= SV_PIPE;
  uv_pipe_init(srv->loop->uv, &lh->h.pipe, 0);
  err = uv_pipe_bind(&lh->h.pipe, srv->path);
  if (err != 0) {
    free(srv->path); /* IP-C-07: not ours to unlink */
    srv->path = NULL;
  }
  if (err == 0 && mode != 0)
    err = uv_pipe_chmod(&lh->h.pipe, mode);
  if (err == 0)
    err = start_listening(srv, o->backlog);
  if (err != 0) {
    cnet_error_t e;
    cnet__error_listen(&e, err, o->path, -1); /* LE-05: port -1 */
    detach_handle(srv);
    defer_error(srv, &e);
  }
  return 0;
}

static int check_listen(const cnet_server_t *srv,
                        const cnet_listen_options_t *o, size_t *path_len) {
  int err;

  if (srv == NULL || o == NULL)
    return cnet__fail(CNET_ERR_INVALID_ARG_TYPE, "\"options\" argument",
                      "object", "NULL");
  if (srv->lh != NULL || (srv->flags & SV_RESOLVING))
    return cnet__fail(CNET_ERR_SERVER_ALREADY_LISTEN);
  if ((err = cnet__check_port(o->port, "options.port")) != 0)
    return err; /* LS-10: a bad port fails even with a good path */
  if (o->backlog < 0) {
    char received[32];
    snprintf(received, sizeof(received), "%d", o->backlog);
    return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "property 'options.backlog'",
                      "is invalid", received);
  }
  if (o->path != NULL && o->port == 0) {
    *path_len = o->path_len != 0 ? o->path_len : strlen(o->path);
    if ((err = cnet__check_pipe_path(o->path, *path_len)) != 0)
      return cnet__fail_errno(err, "listen");
  }
  if (o->host != NULL && o->host[0] == '\0')
    return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "property 'options.host'",
                      "is invalid", "''");
  return 0;
}

int cnet_server_listen(cnet_server_t *srv, const cnet_listen_options_t *opts,
                       cnet_server_listener cb, void *ctx) {
  size_t path_len = 0;
  int err;

  if ((err = check_listen(srv, opts, &path_len)) != 0)
    return err;
  srv->gen++;
  if (cb != NULL) /* LS-05 */
    cnet_server_once(srv, CNET_EV_LISTENING, cb, ctx);
  if (opts->path != NULL && opts->port == 0)
    return listen_pipe(srv, opts, path_len);
  if (opts->host == NULL)
    listen_any(srv, opts->port, opts->ipv6_only, opts->backlog);
  else if (cnet_is_ip(opts->host))
    listen_ip(srv, opts->host, opts->port, opts->ipv6_only, opts->backlog);
  else
    return listen_name(srv, opts);
  return 0;
}

int cnet_server_listen_port(cnet_server_t *srv, int port, const char *host,
                            int backlog, cnet_server_listener cb, void *ctx) {
  cnet_listen_options_t o = {.port = port, .host = host, .backlog = backlog};

  return cnet_server_listen(srv, &o, cb, ctx);
}

int cnet_server_listen_path(cnet_server_t *srv, const char *path, int backlog,
                            cnet_server_listener cb, void *ctx) {
  cnet_listen_options_t o = {.path = path, .backlog = backlog};

  if (path == NULL)
    return cnet__fail(CNET_ERR_INVALID_ARG_TYPE, "\"path\" argument",
                      "string", "NULL");
  return cnet_server_listen(srv, &o, cb, ctx);
}

/* ---- closing ------------------------------------------------------------ */

static void run_close(cnet__tick_t *t) {
  cnet_server_t *srv = t->obj;
  cnet_event_t ev = {.type = CNET_EV_CLOSE};
  cnet_error_t err;

  if (t->p1 != NULL) { /* CL-03 */
    cnet__error_node(&err, CNET_ERR_SERVER_NOT_RUNNING);
    ev.close.error = &err;
  }
  server_emit(srv, &ev);
}

/* Node's _emitCloseIfDrained: 'close' once no handle and no connection is
 * left, on the next tick. */
static void maybe_emit_close(cnet_server_t *srv, bool not_running) {
  if (srv->lh == NULL && srv->connections == 0)
    server_defer(srv, run_close, not_running ? srv : NULL);
}

void cnet__server_connection_gone(cnet_server_t *srv) {
  assert(srv->connections > 0);
  srv->connections--;
  maybe_emit_close(srv, false);
}

int cnet_server_close(cnet_server_t *srv, cnet_server_listener cb, void *ctx) {
  bool running;

  if (srv == NULL)
    return cnet__fail(UV_EINVAL);
  running = srv->lh != NULL;
  if (cb != NULL)
    cnet_server_once(srv, CNET_EV_CLOSE, cb, ctx);
  srv->flags &= ~SV_RESOLVING;
  srv->gen++;
  if (running)
    detach_handle(srv);
  maybe_emit_close(srv, !running);
  return 0;
}

/* ---- the object -------------------------------------------------------- */

cnet_server_t *cnet_create_server(uv_loop_t *loop,
                                  const cnet_server_options_t *opts,
                                  cnet_server_listener connection_listener,
                                  void *ctx) {
  cnet__loop_t *L = cnet__loop_get(loop);
  cnet_server_t *srv = L != NULL ? calloc(1, sizeof(*srv)) : NULL;

  if (srv == NULL) {
    if (L != NULL)
      cnet__loop_put(L);
    cnet__fail(UV_ENOMEM);
    return NULL;
  }
  srv->loop = L;
  srv->refs = 1;
  srv->flags = SV_USER_REF;
  cnet__emitter_init(&srv->emitter);
  if (opts != NULL)
    srv->opts = *opts;
  if (connection_listener != NULL &&
      cnet_server_on(srv, CNET_EV_CONNECTION, connection_listener, ctx) != 0) {
    cnet__server_release(srv);
    cnet__fail(UV_ENOMEM);
    return NULL;
  }
  return srv;
}

void cnet_server_free(cnet_server_t *srv) {
  if (srv == NULL || !(srv->flags & SV_USER_REF))
    return;
  if (srv->lh != NULL || (srv->flags & SV_RESOLVING))
    cnet_server_close(srv, NULL, NULL);
  srv->flags &= ~SV_USER_REF;
  cnet__server_release(srv);
}

int cnet_server_address(const cnet_server_t *srv, cnet_address_t *out) {
  cnet__sockaddr_t sa;
  int len = sizeof(sa);
  int err;

  if (out == NULL)
    return UV_EINVAL;
  memset(out, 0, sizeof(*out));
  if (srv == NULL || !(srv->flags & SV_LISTENING))
    return UV_ENOTCONN; /* AD-03: Node's null */
  if (srv->flags & SV_PIPE) { /* AD-02: the path as given */
    memcpy(out->address, srv->path, srv->path_len);
    out->address_len = srv->path_len;
    out->port = -1;
    return 0;
  }
  err = uv_tcp_getsockname(&srv->lh->h.tcp, &sa.sa, &len);
  if (err == 0)
    cnet__address_from_sockaddr(out, &sa.sa);
  return err;
}

bool cnet_server_listening(const cnet_server_t *srv) {
  return srv != NULL && (srv->flags & SV_LISTENING) != 0;
}

static void run_count(cnet__tick_t *t) {
  cnet_server_t *srv = t->obj;
  cnet_count_cb cb = (cnet_count_cb)(uintptr_t)t->p2;

  cb(srv, NULL, srv->connections, t->p1);
}

int cnet_server_get_connections(cnet_server_t *srv, cnet_count_cb cb,
                                void *ctx) {
  if (srv == NULL || cb == NULL)
    return cnet__fail(UV_EINVAL);
  server_defer(srv, run_count, ctx)->p2 = (void *)(uintptr_t)cb;
  return 0;
}

size_t cnet_server_connections(const cnet_server_t *srv) {
  return srv != NULL ? srv->connections : 0;
}

void cnet_server_ref(cnet_server_t *srv) {
  if (srv == NULL)
    return;
  srv->flags &= ~SV_UNREF;
  if (srv->lh != NULL)
    uv_ref(&srv->lh->h.handle);
}

void cnet_server_unref(cnet_server_t *srv) {
  if (srv == NULL)
    return;
  srv->flags |= SV_UNREF; /* RF-02: remembered before listen */
  if (srv->lh != NULL)
    uv_unref(&srv->lh->h.handle);
}

void cnet_server_set_data(cnet_server_t *srv, void *data) {
  if (srv != NULL)
    srv->data = data;
}

void *cnet_server_get_data(const cnet_server_t *srv) {
  return srv != NULL ? srv->data : NULL;
}

uv_loop_t *cnet_server_loop(const cnet_server_t *srv) {
  return srv != NULL ? srv->loop->uv : NULL;
}

/* ---- listeners --------------------------------------------------------- */

static int server_add(cnet_server_t *srv, cnet_event_type_t type,
                      cnet_server_listener fn, void *ctx, bool once,
                      bool prepend) {
  if (srv == NULL || fn == NULL || (unsigned)type >= CNET_EV_COUNT_)
    return UV_EINVAL;
  return cnet__emitter_add(&srv->emitter, type, (cnet__any_fn)fn, ctx, once,
                           prepend);
}

int cnet_server_on(cnet_server_t *srv, cnet_event_type_t type,
                   cnet_server_listener fn, void *ctx) {
  return server_add(srv, type, fn, ctx, false, false);
}

int cnet_server_once(cnet_server_t *srv, cnet_event_type_t type,
                     cnet_server_listener fn, void *ctx) {
  return server_add(srv, type, fn, ctx, true, false);
}

int cnet_server_prepend_listener(cnet_server_t *srv, cnet_event_type_t type,
                                 cnet_server_listener fn, void *ctx) {
  return server_add(srv, type, fn, ctx, false, true);
}

int cnet_server_off(cnet_server_t *srv, cnet_event_type_t type,
                    cnet_server_listener fn, void *ctx) {
  if (srv == NULL)
    return UV_EINVAL;
  cnet__emitter_remove(&srv->emitter, type, (cnet__any_fn)fn, ctx);
  return 0;
}

size_t cnet_server_listener_count(const cnet_server_t *srv,
                                  cnet_event_type_t type) {
  return srv != NULL ? cnet__emitter_count(&srv->emitter, type) : 0;
}

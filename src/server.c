/* net.Server: every listen form (TCP, IPC, a descriptor, another server's
 * socket), close and graceful close, counting and properties. Accepting is
 * in accept.c, the socket system calls in os_socket.c.
 *
 * The listener is allocated apart from the server: close() detaches it and
 * lets libuv finish closing it in the background, so the same server may
 * listen again at once (CL-06, LE-02) -- the docs' EADDRINUSE retry. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct {
  cnet_server_t *srv;
  uint32_t gen;
  int port, backlog;
  bool ipv6_only, reuse_port;
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
  assert(srv->lh == NULL && srv->deadline == NULL);
  cnet__emitter_free(&srv->emitter);
  cnet__free(srv->path);
  cnet__free(srv);
  cnet__loop_put(L);
}

void cnet__server_emit(cnet_server_t *srv, const cnet_event_t *ev) {
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
    cnet__server_emit(srv, &ev);
  cnet__free(err);
}

void cnet__server_defer_error(cnet_server_t *srv, const cnet_error_t *err) {
  cnet_error_t *copy = cnet__xmalloc(sizeof(*copy));

  *copy = *err;
  server_defer(srv, run_error, copy);
}

/* ---- listening ---------------------------------------------------------- */

static void detach_listener(cnet_server_t *srv) {
  cnet__acceptor_close(srv->lh);
  srv->lh = NULL;
  srv->flags &= ~SV_LISTENING;
  if (srv->path != NULL) { /* CL-07: we made the file, we remove it */
    if (srv->path[0] != '\0')
      unlink(srv->path);
    cnet__free(srv->path);
    srv->path = NULL;
  }
}

static void run_listening(cnet__tick_t *t) {
  cnet_server_t *srv = t->obj;
  cnet_event_t ev = {.type = CNET_EV_LISTENING};

  if ((uint32_t)t->status == srv->gen && (srv->flags & SV_LISTENING))
    cnet__server_emit(srv, &ev);
}

/* fd listens already; from here the server owns it. On failure it is
 * still the caller's. */
static int start_listening(cnet_server_t *srv, int fd, bool pipe) {
  int err = cnet__acceptor_start(srv, fd);

  if (err != 0)
    return err;
  srv->flags = (srv->flags & ~SV_PIPE) | SV_LISTENING | (pipe ? SV_PIPE : 0);
  server_defer(srv, run_listening, NULL);
  return 0;
}

/* LE-04: bind errors are reported as listen's, as libuv defers them. */
static int bind_tcp(cnet_server_t *srv, const cnet__sockaddr_t *sa,
                    bool ipv6_only, bool reuse_port, int backlog) {
  int fd = cnet__listen_tcp(sa, ipv6_only, reuse_port, backlog);
  int err;

  if (fd < 0)
    return fd;
  if ((err = start_listening(srv, fd, false)) != 0)
    close(fd);
  return err;
}

/* LE-01: the error comes after listen() returns; listening stays false and
 * 'close' is not emitted. */
static void listen_failed(cnet_server_t *srv, int err, const char *address,
                          int port) {
  cnet_error_t e;

  cnet__error_listen(&e, err, address, port);
  cnet__server_defer_error(srv, &e);
}

typedef struct {
  int port, backlog;
  bool ipv6_only, reuse_port;
} tcp_args_t;

/* LS-06: no host means "::" (dual-stack), or "0.0.0.0" where the machine
 * has no IPv6. */
static void listen_any(cnet_server_t *srv, const tcp_args_t *a) {
  cnet__sockaddr_t sa;
  int err;

  cnet__sockaddr_from_ip(&sa, "::", a->port);
  err = bind_tcp(srv, &sa, a->ipv6_only, a->reuse_port, a->backlog);
  if (err == UV_EAFNOSUPPORT || err == UV_EADDRNOTAVAIL) {
    cnet__sockaddr_from_ip(&sa, "0.0.0.0", a->port);
    err = bind_tcp(srv, &sa, false, a->reuse_port, a->backlog);
    if (err != 0)
      listen_failed(srv, err, "0.0.0.0", a->port);
  } else if (err != 0) {
    listen_failed(srv, err, "::", a->port);
  }
}

static void listen_ip(cnet_server_t *srv, const char *ip,
                      const tcp_args_t *a) {
  cnet__sockaddr_t sa;
  int err;

  cnet__sockaddr_from_ip(&sa, ip, a->port);
  err = bind_tcp(srv, &sa, a->ipv6_only, a->reuse_port, a->backlog);
  if (err != 0)
    listen_failed(srv, err, ip, a->port);
}

static void on_listen_lookup(cnet__lookup_t *req, int status,
                             struct addrinfo *res, void *data) {
  listen_lookup_t *ll = data;
  cnet_server_t *srv = ll->srv;
  tcp_args_t a = {ll->port, ll->backlog, ll->ipv6_only, ll->reuse_port};
  cnet_address_t addr;
  cnet_error_t err;

  (void)req;
  if (ll->gen == srv->gen) { /* CL-05: else close() came first */
    srv->flags &= ~SV_RESOLVING;
    if (status != 0 || res == NULL) {
      cnet__error_dns(&err, status != 0 ? status : UV_EAI_NONAME, ll->host);
      cnet__server_defer_error(srv, &err);
    } else { /* LS-08: v20 takes the first answer */
      cnet__address_from_sockaddr(&addr, res->ai_addr);
      listen_ip(srv, addr.address, &a);
    }
  }
  if (res != NULL)
    uv_freeaddrinfo(res);
  cnet__free(ll);
  cnet__server_release(srv);
}

static int listen_name(cnet_server_t *srv, const cnet_listen_options_t *o) {
  listen_lookup_t *ll = cnet__calloc(1, sizeof(*ll));
  int err;

  if (ll == NULL)
    return cnet__fail(UV_ENOMEM);
  ll->srv = srv;
  ll->gen = srv->gen;
  ll->port = o->port;
  ll->backlog = o->backlog;
  ll->ipv6_only = o->ipv6_only;
  ll->reuse_port = o->reuse_port;
  snprintf(ll->host, sizeof(ll->host), "%s", o->host);
  err = cnet__lookup(srv->loop, o->host, 0, AI_ADDRCONFIG, on_listen_lookup,
                     ll);
  if (err != 0) {
    cnet__free(ll);
    return cnet__fail_errno(err, "getaddrinfo");
  }
  srv->refs++;
  srv->flags |= SV_RESOLVING;
  return 0;
}

static int listen_pipe(cnet_server_t *srv, const cnet_listen_options_t *o,
                       size_t len) {
  char shown[CNET_ADDR_MAX];
  int fd, err;

  if ((srv->path = cnet__malloc(len + 1)) == NULL)
    return cnet__fail(UV_ENOMEM);
  memcpy(srv->path, o->path, len);
  srv->path[len] = '\0';
  srv->path_len = len;
  fd = cnet__listen_unix(o->path, len, o->readable_all, o->writable_all,
                         o->backlog);
  if (fd < 0 || (err = start_listening(srv, fd, true)) != 0) {
    if (fd >= 0) {
      close(fd);
      if (o->path[0] != '\0')
        unlink(srv->path);
    }
    err = fd < 0 ? fd : err;
    cnet__free(srv->path); /* IP-C-07: a file we did not make is not ours */
    srv->path = NULL;
    /* libuv reports a missing directory as EACCES, and Node with it */
    if (err == UV_ENOENT)
      err = UV_EACCES;
    cnet__pipe_display(shown, o->path, len);
    listen_failed(srv, err, shown, -1); /* LE-05: port -1 */
  }
  return 0;
}

/* LE-06 once a socket exists. While a name is being looked up, a new
 * listen() supersedes the first, as in Node (correction 1). */
static int fail_already_listening(const cnet_server_t *srv) {
  if (srv->lh != NULL)
    return cnet__fail(CNET_ERR_SERVER_ALREADY_LISTEN);
  return 0;
}

/* Node's inspect() of the options, for IP-C-06's message. */
static void describe_abstract(char *out, size_t n,
                              const cnet_listen_options_t *o, size_t len) {
  size_t at = (size_t)snprintf(out, n, "{ path: '");

  for (size_t i = 0; i < len && at + 8 < n; i++) {
    unsigned char c = (unsigned char)o->path[i];
    at += (size_t)snprintf(out + at, n - at, c < 0x20 || c == 0x7f ? "\\x%02x"
                                                                   : "%c",
                           c);
  }
  snprintf(out + at, n - at, "'%s%s }",
           o->readable_all ? ", readableAll: true" : "",
           o->writable_all ? ", writableAll: true" : "");
}

static int check_listen(const cnet_server_t *srv,
                        const cnet_listen_options_t *o, size_t *path_len) {
  int err;

  if (srv == NULL)
    return cnet__fail(CNET_ERR_INVALID_ARG_TYPE, "\"server\" argument",
                      "cnet_server_t", "NULL");
  if (o == NULL)
    return cnet__fail(CNET_ERR_INVALID_ARG_TYPE, "\"options\" argument",
                      "object", "NULL");
  if ((err = fail_already_listening(srv)) != 0)
    return err;
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
    if (*path_len == 0) /* LS-12 */
      return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "argument 'options'",
                        "is invalid", "{ path: '' }");
    if ((err = cnet__check_pipe_path(o->path, *path_len)) != 0)
      return cnet__fail_errno(err, "listen");
    if (o->path[0] == '\0' && (o->readable_all || o->writable_all)) {
      char received[CNET_ADDR_MAX * 4 + 64];
      describe_abstract(received, sizeof(received), o, *path_len);
      return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "argument 'options'",
                        "can not set readableAll or writableAllt to true "
                        "when path is abstract unix socket", /* Node's typo */
                        received);
    }
  }
  if (o->host != NULL && o->host[0] == '\0')
    return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "property 'options.host'",
                      "is invalid", "''");
  return 0;
}

static void on_deadline_closed(uv_handle_t *h) {
  cnet_server_t *srv = h->data;

  cnet__free(h);
  cnet__server_release(srv);
}

static void stop_deadline(cnet_server_t *srv) {
  if (srv->deadline != NULL) {
    uv_close((uv_handle_t *)srv->deadline, on_deadline_closed);
    srv->deadline = NULL;
  }
}

/* Every listen starts a new generation: ticks and lookups of an earlier
 * one see the change and stand down; a graceful close still running stops
 * (its deadline would destroy the new connections too). */
static void begin_listen(cnet_server_t *srv, cnet_server_listener cb,
                         void *ctx) {
  srv->gen++; /* a lookup still running is superseded */
  srv->flags &= ~(SV_GRACEFUL | SV_RESOLVING); /* and a graceful close */
  stop_deadline(srv);
  if (cb != NULL) /* LS-05 */
    cnet_server_once(srv, CNET_EV_LISTENING, cb, ctx);
}

int cnet_server_listen(cnet_server_t *srv, const cnet_listen_options_t *opts,
                       cnet_server_listener cb, void *ctx) {
  tcp_args_t a;
  size_t path_len = 0;
  int err;

  if ((err = check_listen(srv, opts, &path_len)) != 0)
    return err;
  begin_listen(srv, cb, ctx);
  if (opts->path != NULL && opts->port == 0)
    return listen_pipe(srv, opts, path_len);
  a = (tcp_args_t){opts->port, opts->backlog, opts->ipv6_only,
                   opts->reuse_port};
  if (opts->host == NULL)
    listen_any(srv, &a);
  else if (cnet_is_ip(opts->host))
    listen_ip(srv, opts->host, &a);
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

/* LS-17/LS-18: adopt fd; a descriptor that is not a stream socket is an
 * 'error' ("listen EINVAL: invalid argument", no address). When owned, fd
 * is ours to close if that happens (a duplicate we made). */
static int listen_descriptor(cnet_server_t *srv, int fd, bool owned,
                             int backlog, cnet_server_listener cb,
                             void *ctx) {
  /* Node's err.port: unset for {fd}, -1 for another object's handle */
  int port = owned ? -1 : 0;
  bool is_unix = false;
  int err;

  begin_listen(srv, cb, ctx);
  err = cnet__listen_adopt(fd, backlog, &is_unix);
  if (err >= 0)
    err = start_listening(srv, fd, is_unix);
  if (err < 0) {
    if (owned)
      close(fd);
    listen_failed(srv, err, "", port);
  }
  return 0;
}

int cnet_server_listen_fd(cnet_server_t *srv, int fd, int backlog,
                          cnet_server_listener cb, void *ctx) {
  int err;

  if (srv == NULL)
    return cnet__fail(UV_EINVAL);
  if ((err = fail_already_listening(srv)) != 0)
    return err;
  if (fd < 0)
    return cnet__fail_errno(UV_EBADF, "listen");
  return listen_descriptor(srv, fd, false, backlog, cb, ctx);
}

static int listen_duplicate(cnet_server_t *srv, int fd, int backlog,
                            cnet_server_listener cb, void *ctx) {
  int copy = cnet__dup(fd);

  if (copy < 0)
    return cnet__fail_errno(copy, "listen");
  return listen_descriptor(srv, copy, true, backlog, cb, ctx);
}

int cnet_server_listen_server(cnet_server_t *srv, const cnet_server_t *other,
                              int backlog, cnet_server_listener cb,
                              void *ctx) {
  int err;

  if (srv == NULL || other == NULL)
    return cnet__fail(UV_EINVAL);
  if ((err = fail_already_listening(srv)) != 0)
    return err;
  if (other->lh == NULL)
    return cnet__fail(CNET_ERR_SERVER_NOT_RUNNING);
  return listen_duplicate(srv, other->lh->fd, backlog, cb, ctx);
}

int cnet_server_listen_socket(cnet_server_t *srv, const cnet_socket_t *socket,
                              int backlog, cnet_server_listener cb,
                              void *ctx) {
  uv_os_fd_t fd;
  int err;

  if (srv == NULL || socket == NULL)
    return cnet__fail(UV_EINVAL);
  if ((err = fail_already_listening(srv)) != 0)
    return err;
  if (!(socket->flags & S_HANDLE_OPEN) ||
      uv_fileno(&socket->h.handle, &fd) != 0)
    return cnet__fail_errno(UV_EBADF, "listen");
  return listen_duplicate(srv, fd, backlog, cb, ctx);
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
  cnet__server_emit(srv, &ev);
}

/* Node's _emitCloseIfDrained: 'close' once no listener and no connection
 * is left, on the next tick. */
static void maybe_emit_close(cnet_server_t *srv, bool not_running) {
  if (srv->lh == NULL && srv->connections == 0) {
    srv->flags &= ~SV_GRACEFUL;
    stop_deadline(srv);
    server_defer(srv, run_close, not_running ? srv : NULL);
  }
}

void cnet__server_connection_gone(cnet_socket_t *s) {
  cnet_server_t *srv = s->server;

  assert(srv->connections > 0);
  if (s->conn_prev != NULL)
    s->conn_prev->conn_next = s->conn_next;
  else
    srv->conns = s->conn_next;
  if (s->conn_next != NULL)
    s->conn_next->conn_prev = s->conn_prev;
  s->conn_prev = s->conn_next = NULL;
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
    detach_listener(srv);
  maybe_emit_close(srv, !running);
  return 0;
}

static bool is_idle(const cnet_socket_t *s) {
  return !(s->flags & (S_BUSY | S_ENDING | S_DESTROYED)) &&
         s->wq_head == NULL;
}

static void end_if_idle(cnet_socket_t *s, void *count) {
  if (is_idle(s)) {
    cnet_socket_end(s, NULL, 0, NULL, NULL);
    ++*(int *)count;
  }
}

int cnet_server_close_idle(cnet_server_t *srv) {
  int count = 0;

  if (srv == NULL)
    return cnet__fail(UV_EINVAL);
  cnet__server_each(srv, end_if_idle, &count);
  return count;
}

static void run_idle_check(cnet__tick_t *t) {
  cnet_socket_t *s = t->obj;
  int count = 0;

  s->flags &= ~S_IDLE_CHECK;
  if (s->server != NULL && (s->server->flags & SV_GRACEFUL))
    end_if_idle(s, &count);
}

void cnet__server_connection_idle(cnet_socket_t *s) {
  if (!(s->flags & S_IDLE_CHECK)) {
    s->flags |= S_IDLE_CHECK;
    cnet__socket_defer(s, run_idle_check, NULL, NULL, 0);
  }
}

static void destroy_connection(cnet_socket_t *s, void *arg) {
  (void)arg;
  cnet_socket_destroy(s, NULL);
}

static void on_deadline(uv_timer_t *timer) {
  cnet_server_t *srv = timer->data;
  cnet__loop_t *L = srv->loop;

  cnet__loop_enter(L);
  srv->refs++;
  stop_deadline(srv);
  cnet__server_each(srv, destroy_connection, NULL);
  cnet__server_release(srv);
  cnet__loop_leave(L);
}

int cnet_server_close_gracefully(cnet_server_t *srv, uint64_t deadline_ms,
                                 cnet_server_listener cb, void *ctx) {
  uv_timer_t *timer = NULL;

  if (srv == NULL)
    return cnet__fail(UV_EINVAL);
  if (deadline_ms != 0 && srv->deadline == NULL && srv->connections != 0 &&
      (timer = cnet__malloc(sizeof(*timer))) == NULL)
    return cnet__fail(UV_ENOMEM); /* nothing done yet */
  cnet_server_close(srv, cb, ctx);
  if (srv->connections == 0)
    return 0; /* 'close' is already on its way */
  srv->flags |= SV_GRACEFUL;
  if (timer != NULL) {
    uv_timer_init(srv->loop->uv, timer);
    timer->data = srv;
    srv->refs++; /* the timer's, dropped when it has closed */
    uv_timer_start(timer, on_deadline, deadline_ms, 0);
    srv->deadline = timer;
  }
  cnet_server_close_idle(srv);
  return 0;
}

/* ---- the object -------------------------------------------------------- */

cnet_server_t *cnet_create_server(uv_loop_t *loop,
                                  const cnet_server_options_t *opts,
                                  cnet_server_listener connection_listener,
                                  void *ctx) {
  cnet__loop_t *L = cnet__loop_get(loop);
  cnet_server_t *srv = L != NULL ? cnet__calloc(1, sizeof(*srv)) : NULL;

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

/* TCP: getsockname. IPC: the name as given (AD-02), or for an adopted
 * socket the one the kernel has. */
int cnet_server_address(const cnet_server_t *srv, cnet_address_t *out) {
  union {
    cnet__sockaddr_t ip;
    struct sockaddr_un un;
  } sa;
  socklen_t len = sizeof(sa);

  if (out == NULL)
    return cnet__fail(UV_EINVAL);
  memset(out, 0, sizeof(*out));
  if (srv == NULL || !(srv->flags & SV_LISTENING))
    return UV_ENOTCONN; /* AD-03: Node's null */
  if (srv->path != NULL) {
    memcpy(out->address, srv->path, srv->path_len);
    out->address_len = srv->path_len;
    out->port = -1;
    return 0;
  }
  if (getsockname(srv->lh->fd, &sa.ip.sa, &len) != 0)
    return CNET__ERR(errno);
  if (sa.ip.sa.sa_family != AF_UNIX) {
    cnet__address_from_sockaddr(out, &sa.ip.sa);
    return 0;
  }
  len -= (socklen_t)offsetof(struct sockaddr_un, sun_path);
  if (len > 0 && sa.un.sun_path[0] != '\0')
    len = (socklen_t)strnlen(sa.un.sun_path, len);
  memcpy(out->address, sa.un.sun_path, len);
  out->address_len = len;
  out->port = -1;
  return 0;
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

unsigned cnet_server_max_connections(const cnet_server_t *srv) {
  return srv != NULL ? srv->opts.max_connections : 0;
}

void cnet_server_set_max_connections(cnet_server_t *srv, unsigned max) {
  if (srv != NULL)
    srv->opts.max_connections = max;
}

uint64_t cnet_server_accept_errors(const cnet_server_t *srv) {
  return srv != NULL ? srv->accept_errors : 0;
}

uint64_t cnet_server_blocked(const cnet_server_t *srv) {
  return srv != NULL ? srv->blocked : 0;
}

void cnet_server_ref(cnet_server_t *srv) {
  if (srv == NULL)
    return;
  srv->flags &= ~SV_UNREF;
  if (srv->lh != NULL)
    cnet__acceptor_set_ref(srv->lh, true);
}

void cnet_server_unref(cnet_server_t *srv) {
  if (srv == NULL)
    return;
  srv->flags |= SV_UNREF; /* RF-02: remembered before listen */
  if (srv->lh != NULL)
    cnet__acceptor_set_ref(srv->lh, false);
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
    return cnet__fail(UV_EINVAL);
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
    return cnet__fail(UV_EINVAL);
  cnet__emitter_remove(&srv->emitter, type, (cnet__any_fn)fn, ctx);
  return 0;
}

size_t cnet_server_listener_count(const cnet_server_t *srv,
                                  cnet_event_type_t type) {
  return srv != NULL ? cnet__emitter_count(&srv->emitter, type) : 0;
}

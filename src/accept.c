/* Accepting: the listening socket's watcher, connection limits ('drop'),
 * accept failures with back-off, and the list of a server's connections.
 *
 * libuv's uv_listen() calls accept() in a loop and, when accept() fails
 * for want of descriptors and its one spare descriptor is gone (another
 * thread took it), calls back with EMFILE and tries again at once -- the
 * process spins at 100% CPU. So cnet watches the listening socket with a
 * uv_poll_t and calls accept4() itself: after a resource failure it stops
 * watching and tries again 10 ms later, doubling to 1 s while failures
 * last. Pending clients wait in the kernel's backlog meanwhile (libuv and
 * Node accept and close them). The cost is one fcntl per accepted socket
 * in uv_tcp_open(). */
#include "internal.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BATCH 64     /* accepts per wakeup, so other I/O gets a turn */
#define BACKOFF_FIRST_MS 10
#define BACKOFF_MAX_MS 1000

/* ---- failures ----------------------------------------------------------- */

static bool is_resource_error(int err) {
  return err == UV_EMFILE || err == UV_ENFILE || err == UV_ENOBUFS ||
         err == UV_ENOMEM;
}

/* accept(2): these concern one connection (already gone); try the next. */
static bool is_connection_error(int err) {
  switch (-err) {
  case ECONNABORTED: case EPROTO: case EPERM: case ENETDOWN: case ENOPROTOOPT:
  case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP:
  case ENETUNREACH:
    return true;
  default:
    return false;
  }
}

static void stop_watching(cnet__acceptor_t *lh) {
  uv_poll_stop(&lh->poll);
}

static void on_backoff_done(uv_timer_t *timer);

static void start_backoff(cnet__acceptor_t *lh) {
  lh->backoff_ms = lh->backoff_ms == 0 ? BACKOFF_FIRST_MS
                   : lh->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                         : lh->backoff_ms * 2;
  lh->backing_off = true;
  stop_watching(lh);
  uv_timer_start(&lh->backoff, on_backoff_done, lh->backoff_ms, 0);
}

/* A failure that is not the server's 'error' (DESIGN): counted, reported
 * by its own event; the server keeps listening. */
static void accept_failed(cnet_server_t *srv, cnet__acceptor_t *lh, int err) {
  cnet_event_t ev = {.type = CNET_EV_ACCEPT_ERROR};
  cnet_error_t e;

  cnet__error_errno(&e, err, "accept");
  if (is_resource_error(err)) {
    start_backoff(lh);
  } else if (!is_connection_error(err)) {
    /* EBADF, EINVAL...: the socket itself is broken; watching it would
     * spin. Node's 'error', and no more accepting (backing off with no
     * timer to end it). */
    lh->backing_off = true;
    stop_watching(lh);
    cnet__server_defer_error(srv, &e);
    return;
  }
  srv->accept_errors++;
  ev.error = &e;
  cnet__server_emit(srv, &ev);
}

/* ---- admitting a connection --------------------------------------------- */

static void fill_address(cnet_address_t *out, int fd, bool peer) {
  cnet__sockaddr_t sa;
  socklen_t len = sizeof(sa);
  int r = peer ? getpeername(fd, &sa.sa, &len) : getsockname(fd, &sa.sa, &len);

  if (r == 0)
    cnet__address_from_sockaddr(out, &sa.sa);
  else
    memset(out, 0, sizeof(*out));
}

/* Beyond Node v20: the server's block_list turns a TCP peer away before
 * any 'connection'. */
static bool is_blocked(const cnet_server_t *srv, int fd) {
  cnet__sockaddr_t peer;
  socklen_t len = sizeof(peer);

  if (srv->opts.block_list == NULL || (srv->flags & SV_PIPE))
    return false;
  if (getpeername(fd, &peer.sa, &len) != 0)
    return false;
  return cnet_block_list_check_sockaddr(srv->opts.block_list, &peer.sa);
}

/* MC-01/02: past max_connections (or blocked) the connection is closed at
 * once and 'drop' says which it was (nothing for IPC). Not counted
 * (MC-07). */
static void drop(cnet_server_t *srv, int fd, bool blocked) {
  cnet_event_t ev = {.type = CNET_EV_DROP};
  cnet_address_t local, remote;

  ev.drop.blocked = blocked;

  if (!(srv->flags & SV_PIPE)) {
    fill_address(&local, fd, false);
    fill_address(&remote, fd, true);
    ev.drop.local = &local;
    ev.drop.remote = &remote;
  }
  close(fd);
  cnet__server_emit(srv, &ev);
}

/* Gives fd a socket and emits 'connection'. false when memory ran out:
 * fd is then still the caller's. */
static bool admit(cnet_server_t *srv, int fd) {
  const cnet_server_options_t *o = &srv->opts;
  cnet__loop_t *L = srv->loop;
  bool ipc = (srv->flags & SV_PIPE) != 0;
  cnet_socket_t *s = cnet__socket_alloc(L, o->allow_half_open,
                                        o->high_water_mark, !ipc);
  cnet_event_t ev = {.type = CNET_EV_CONNECTION};
  unsigned delay = o->keep_alive_initial_delay / 1000; /* SV-03 */
  int err;

  if (s == NULL)
    return false;
  if (delay != 0) {
    if (cnet__socket_extra(s) == NULL) {
      cnet__free(s);
      return false;
    }
    s->extra->keep_alive_delay = delay;
  }
  L->refs++;
  err = ipc ? uv_pipe_init(L->uv, &s->h.pipe, o->channel)
            : uv_tcp_init(L->uv, &s->h.tcp);
  s->refs = 1; /* the open handle's */
  if (err == 0 && ipc && o->channel)
    err = cnet__channel_attach(s);
  s->flags |= S_HANDLE_OPEN | (ipc ? S_PIPE : 0);
  if (err == 0)
    err = ipc ? uv_pipe_open(&s->h.pipe, fd) : uv_tcp_open(&s->h.tcp, fd);
  if (err != 0) {
    close(fd);
    cnet_socket_destroy(s, NULL); /* nobody listens: closes quietly */
    return true;
  }
  s->server = srv;
  srv->refs++;
  srv->connections++;
  s->conn_next = srv->conns;
  if (srv->conns != NULL)
    srv->conns->conn_prev = s;
  srv->conns = s;
  s->flags |= S_CONNECTED | S_COUNTED;
  if (o->no_delay)
    s->flags |= S_NO_DELAY;
  if (o->keep_alive)
    s->flags |= S_KEEP_ALIVE;
  if (o->pause_on_connect)
    s->flags |= S_PAUSED; /* SV-07: not one byte read until resume() */
  cnet__socket_apply_options(s); /* SV-05/06: before 'connection' */
  ev.connection = s;
  cnet__socket_retain(s);
  cnet__server_emit(srv, &ev);
  cnet__stream_maybe_read(s);
  cnet__socket_release(s);
  return true;
}

static int next_fd(cnet__acceptor_t *lh) {
  int fd = lh->held_fd;

  if (fd < 0)
    return cnet__accept(lh->fd);
  lh->held_fd = -1;
  return fd;
}

/* Listeners may close the server (or listen again) at any point: stop as
 * soon as srv->lh is no longer this listener. */
static void accept_some(cnet_server_t *srv, cnet__acceptor_t *lh) {
  for (int n = 0; n < ACCEPT_BATCH && srv->lh == lh && !lh->backing_off;
       n++) {
    unsigned max = srv->opts.max_connections;
    int fd = next_fd(lh);

    if (fd == UV_EAGAIN) {
      lh->backoff_ms = 0;
      return;
    }
    if (fd < 0) {
      accept_failed(srv, lh, fd);
      continue;
    }
    lh->backoff_ms = 0;
    if (is_blocked(srv, fd)) {
      srv->blocked++;
      drop(srv, fd, true);
    } else if (max != 0 && srv->connections >= max) {
      drop(srv, fd, false);
    } else if (!admit(srv, fd)) {
      lh->held_fd = fd; /* tried again after the back-off */
      accept_failed(srv, lh, UV_ENOMEM);
    }
  }
}

static void with_server(cnet__acceptor_t *lh,
                        void (*fn)(cnet_server_t *, cnet__acceptor_t *)) {
  cnet_server_t *srv = lh->srv;
  cnet__loop_t *L;

  if (srv == NULL)
    return; /* detached: closing */
  L = srv->loop;
  cnet__loop_enter(L);
  srv->refs++;
  fn(srv, lh);
  cnet__server_release(srv);
  cnet__loop_leave(L);
}

/* A poll error (epoll's EPOLLERR) stops the watcher: report it as a
 * broken listening socket. */
static void poll_error(cnet_server_t *srv, cnet__acceptor_t *lh) {
  accept_failed(srv, lh, UV_EBADF);
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  cnet__acceptor_t *lh = container_of(poll, cnet__acceptor_t, poll);

  (void)events;
  with_server(lh, status < 0 ? poll_error : accept_some);
}

static void resume_accepting(cnet_server_t *srv, cnet__acceptor_t *lh) {
  lh->backing_off = false;
  uv_poll_start(&lh->poll, UV_READABLE, on_readable);
  accept_some(srv, lh);
}

static void on_backoff_done(uv_timer_t *timer) {
  with_server(container_of(timer, cnet__acceptor_t, backoff),
              resume_accepting);
}

/* ---- the listener's life ------------------------------------------------ */

int cnet__acceptor_start(cnet_server_t *srv, int fd) {
  cnet__acceptor_t *lh = cnet__calloc(1, sizeof(*lh));
  uv_loop_t *uv = srv->loop->uv;
  int err;

  if (lh == NULL)
    return UV_ENOMEM;
  err = uv_poll_init_socket(uv, &lh->poll, fd);
  if (err != 0) {
    cnet__free(lh);
    return err;
  }
  uv_timer_init(uv, &lh->backoff);
  lh->handles = 2;
  lh->fd = fd;
  lh->held_fd = -1;
  lh->srv = srv;
  srv->lh = lh;
  uv_poll_start(&lh->poll, UV_READABLE, on_readable);
  cnet__acceptor_set_ref(lh, !(srv->flags & SV_UNREF));
  return 0;
}

void cnet__acceptor_set_ref(cnet__acceptor_t *lh, bool ref) {
  if (ref) {
    uv_ref((uv_handle_t *)&lh->poll);
    uv_ref((uv_handle_t *)&lh->backoff);
  } else {
    uv_unref((uv_handle_t *)&lh->poll);
    uv_unref((uv_handle_t *)&lh->backoff);
  }
}

static void on_acceptor_handle_closed(uv_handle_t *h) {
  cnet__acceptor_t *lh = h->data;

  if (--lh->handles == 0)
    cnet__free(lh);
}

void cnet__acceptor_close(cnet__acceptor_t *lh) {
  lh->srv = NULL;
  lh->poll.data = lh->backoff.data = lh;
  uv_close((uv_handle_t *)&lh->poll, on_acceptor_handle_closed);
  uv_close((uv_handle_t *)&lh->backoff, on_acceptor_handle_closed);
  close(lh->fd); /* after uv_close: libuv no longer watches it */
  if (lh->held_fd >= 0)
    close(lh->held_fd);
}

/* ---- the server's connections ------------------------------------------ */

/* fn may end or destroy s (which unlinks it) but nothing else, and user
 * code never runs inside it (events are deferred): the next link is read
 * before the call. */
void cnet__server_each(cnet_server_t *srv,
                       void (*fn)(cnet_socket_t *s, void *arg), void *arg) {
  cnet_socket_t *next;

  for (cnet_socket_t *s = srv->conns; s != NULL; s = next) {
    next = s->conn_next;
    fn(s, arg);
  }
}

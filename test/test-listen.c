/* server.listen() in all its forms and what each one does on Linux: options,
 * port/host/backlog, path, fd, another server's or a socket's handle;
 * ipv6Only, reusePort, exclusive; names to resolve; listen errors; IPC
 * paths (abstract names, modes, lengths, Windows-style names); address()
 * (NODE-NET-BEHAVIOURS 1.3, 1.5, 1.6, 1.14 and section 7).
 *
 * Expected values were checked against Node v20.20.2 on this machine:
 *   listen(4567, '192.0.2.1')  listen EADDRNOTAVAIL: address not available
 *                              192.0.2.1:4567 (port 4567; with port 0 the
 *                              message has no ":0" and err.port is unset)
 *   listen(0, 'nonexistent.invalid')
 *                              getaddrinfo ENOTFOUND nonexistent.invalid
 *                              (errno -3008, syscall getaddrinfo)
 *   listen('/missing-dir/s')   listen EACCES: permission denied /missing-dir/s
 *                              (libuv turns ENOENT into EACCES), port -1
 *   listen({fd: <regular file>})  listen EINVAL: invalid argument, no
 *                              address, no port; the fd stays open
 *   listen(<connected socket>) listen EINVAL: invalid argument, address
 *                              null, port -1
 *   listen('\0name')           address() is the name with its NUL
 *   listen('\\\\.\\pipe\\x')   a file of that name in the cwd, removed on close
 *   readableAll/writableAll    umask 077: none 0700, r 0744, w 0722, rw 0766;
 *                              umask 022: none 0755, w 0777
 *   abstract + readableAll     ERR_INVALID_ARG_VALUE "The argument 'options'
 *                              can not set readableAll or writableAllt to true
 *                              when path is abstract unix socket. Received
 *                              { path: '\x00abc', readableAll: true }"
 *
 * The listen(2) backlog a socket really got is read back from the kernel
 * (sock_diag: for a listening socket the "write queue" is its backlog, as
 * ss(8) shows in Send-Q); where sock_diag is not available those checks are
 * skipped with a note. */
#define _GNU_SOURCE
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#define LISTEN_STATE 10 /* TCP_LISTEN in the kernel's state numbering */

static trace_t T;

static void reset(void) {
  memset(&T, 0, sizeof(T));
}

/* Records "prefix:event" (or just the event when ctx is NULL). */
static void word(const char *prefix, const char *what) {
  char w[64];

  snprintf(w, sizeof(w), "%s%s%s", prefix ? prefix : "", prefix ? ":" : "",
           what);
  trace_add(&T, w);
}

static void srv_trace(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)srv;
  word(ctx, cnet_event_name(ev->type));
}

static void sock_trace(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  if (ev->type == CNET_EV_CLOSE)
    word(ctx, ev->close.had_error ? "close(true)" : "close(false)");
  else
    word(ctx, cnet_event_name(ev->type));
}

static cnet_server_t *server_new(uv_loop_t *loop, cnet_server_listener fn,
                                 void *ctx) {
  cnet_server_t *srv = cnet_create_server(loop, NULL, fn, ctx);

  ASSERT_NOT_NULL(srv);
  return srv;
}

static cnet_socket_t *client(uv_loop_t *loop, int port, const char *host,
                             cnet_socket_listener cb, void *ctx) {
  cnet_connect_options_t o = {.port = port, .host = host ? host : "127.0.0.1"};
  cnet_socket_t *c = cnet_create_connection(loop, &o, cb, ctx);

  ASSERT_NOT_NULL(c);
  return c;
}

static void end_on_connect(cnet_socket_t *s, const cnet_event_t *ev,
                           void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

static void assert_fd_closed(int fd) {
  errno = 0;
  ASSERT_EQ(-1, fcntl(fd, F_GETFD));
  ASSERT_EQ(EBADF, errno);
}

/* ---- errors ---------------------------------------------------------------
 */

/* The last 'error' a server emitted, and how many. */
static struct {
  int n;
  cnet_error_t err;
  bool listening_at_error;
} E;

static void srv_error(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  ASSERT_EQ(CNET_EV_ERROR, ev->type);
  E.n++;
  E.err = *ev->error;
  E.listening_at_error = cnet_server_listening(srv);
  word(ctx, "error");
}

/* The last 'error' a socket emitted. */
static struct {
  int n;
  cnet_error_t err;
} SE;

static void sock_error(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  SE.n++;
  SE.err = *ev->error;
  word(ctx, "error");
}

/* The listen error of a pipe: libuv's description, then the path. */
static void assert_pipe_listen_error(const cnet_error_t *e, int errnum,
                                     const char *code, const char *desc,
                                     const char *path) {
  char want[256];

  ASSERT_EQ(errnum, e->errnum);
  ASSERT_STR_EQ(e->code, code);
  ASSERT_STR_EQ(e->syscall, "listen");
  ASSERT_STR_EQ(e->address, path);
  ASSERT_EQ(-1, e->port);
  snprintf(want, sizeof(want), "listen %s: %s %s", code, desc, path);
  ASSERT_STR_EQ(e->message, want);
}

/* ---- the kernel's view: sock_diag -----------------------------------------
 */

typedef int (*diag_visit_fn)(const struct nlmsghdr *h, void *ctx);

/* One SOCK_DIAG_BY_FAMILY dump; fn sees every answer until it returns 1.
 * Returns 1 if fn found what it wanted, 0 if not, -1 if sock_diag fails. */
static int diag_dump(const void *req, size_t req_len, diag_visit_fn fn,
                     void *ctx) {
  struct {
    struct nlmsghdr nlh;
    unsigned char body[128];
  } msg;
  static union {
    struct nlmsghdr align;
    char buf[65536];
  } rx;
  struct sockaddr_nl sa;
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  int found = 0;
  bool done = false;

  if (fd < 0)
    return -1;
  ASSERT(req_len <= sizeof(msg.body));
  memset(&msg, 0, sizeof(msg));
  memset(&sa, 0, sizeof(sa));
  sa.nl_family = AF_NETLINK;
  msg.nlh.nlmsg_len = NLMSG_LENGTH(req_len);
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  memcpy(NLMSG_DATA(&msg.nlh), req, req_len);
  if (sendto(fd, &msg, msg.nlh.nlmsg_len, 0, (struct sockaddr *)&sa,
             sizeof(sa)) < 0) {
    close(fd);
    return -1;
  }
  while (!done) {
    ssize_t n = recv(fd, rx.buf, sizeof(rx.buf), 0);
    int left = (int)n;

    if (n <= 0) {
      close(fd);
      return -1;
    }
    /* NLMSG_OK compares the header's __u32 length with our int: clang's
     * -Wsign-compare objects to the macro, not to anything we wrote. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
    for (struct nlmsghdr *h = &rx.align; NLMSG_OK(h, left);
         h = NLMSG_NEXT(h, left)) {
#pragma GCC diagnostic pop
      if (h->nlmsg_type == NLMSG_DONE) {
        done = true;
        break;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        close(fd);
        return -1;
      }
      if (!found)
        found = fn(h, ctx);
    }
  }
  close(fd);
  return found;
}

typedef struct {
  int family;
  int port;
  int backlog;
} tcp_query_t;

static int tcp_visit(const struct nlmsghdr *h, void *ctx) {
  const struct inet_diag_msg *m = NLMSG_DATA(h);
  tcp_query_t *q = ctx;

  if (m->idiag_family != q->family || ntohs(m->id.idiag_sport) != q->port)
    return 0;
  q->backlog = (int)m->idiag_wqueue; /* sk_max_ack_backlog */
  return 1;
}

/* The backlog of the listening TCP socket on port (family AF_INET or
 * AF_INET6); 0 when there is none; -1 without sock_diag. */
static int tcp_backlog(int family, int port) {
  struct inet_diag_req_v2 req;
  tcp_query_t q = {.family = family, .port = port, .backlog = 0};
  int r;

  memset(&req, 0, sizeof(req));
  req.sdiag_family = (unsigned char)family;
  req.sdiag_protocol = IPPROTO_TCP;
  req.idiag_states = 1u << LISTEN_STATE;
  r = diag_dump(&req, sizeof(req), tcp_visit, &q);
  return r < 0 ? -1 : q.backlog;
}

typedef struct {
  const char *name;
  size_t len;
  int backlog;
} unix_query_t;

static int unix_visit(const struct nlmsghdr *h, void *ctx) {
  const struct unix_diag_msg *m = NLMSG_DATA(h);
  unix_query_t *q = ctx;
  const struct rtattr *a = (const struct rtattr *)(m + 1);
  int left = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));
  const char *name = NULL;
  size_t name_len = 0;
  int backlog = -1;

  for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
    if (a->rta_type == UNIX_DIAG_NAME) {
      name = RTA_DATA(a);
      name_len = RTA_PAYLOAD(a);
      /* A file name comes with its NUL; an abstract name is its bytes. */
      if (name_len > 0 && name[0] != '\0' && name[name_len - 1] == '\0')
        name_len--;
    } else if (a->rta_type == UNIX_DIAG_RQLEN) {
      const struct unix_diag_rqlen *rq = RTA_DATA(a);
      backlog = (int)rq->udiag_wqueue;
    }
  }
  if (name == NULL || name_len != q->len || memcmp(name, q->name, q->len) != 0)
    return 0;
  q->backlog = backlog;
  return 1;
}

/* The backlog of the listening Unix socket bound to name (len bytes; an
 * abstract name starts with NUL); 0 when there is none; -1 without
 * sock_diag. */
static int unix_backlog(const char *name, size_t len) {
  struct unix_diag_req req;
  unix_query_t q = {.name = name, .len = len, .backlog = 0};
  int r;

  memset(&req, 0, sizeof(req));
  req.sdiag_family = AF_UNIX;
  req.udiag_states = 1u << LISTEN_STATE;
  req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN;
  req.udiag_cookie[0] = INET_DIAG_NOCOOKIE;
  req.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
  r = diag_dump(&req, sizeof(req), unix_visit, &q);
  return r < 0 ? -1 : q.backlog;
}

static bool diag_note_once(int got) {
  static bool noted;

  if (got >= 0)
    return true;
  if (!noted)
    printf("# sock_diag is not available here: backlogs not checked\n");
  noted = true;
  return false;
}

#define ASSERT_TCP_BACKLOG(family, port, want)                                 \
  do {                                                                         \
    int got_ = tcp_backlog(family, port);                                      \
    if (diag_note_once(got_))                                                  \
      ASSERT_EQ(want, got_);                                                   \
  } while (0)

#define ASSERT_UNIX_BACKLOG(name, len, want)                                   \
  do {                                                                         \
    int got_ = unix_backlog(name, len);                                        \
    if (diag_note_once(got_))                                                  \
      ASSERT_EQ(want, got_);                                                   \
  } while (0)

/* ---- an IPC echo round trip -------------------------------------------------
 */

static struct {
  int connections;
  char rx[64];
  size_t rx_len;
  trace_t ct; /* the client's events */
} EC;

static void echo_connection(cnet_server_t *srv, const cnet_event_t *ev,
                            void *ctx) {
  (void)ctx;
  EC.connections++;
  ASSERT_EQ(0, cnet_socket_pipe(ev->connection, ev->connection, NULL));
  ASSERT_EQ(0, cnet_server_close(srv, NULL, NULL)); /* one per server */
}

static void echo_client_event(cnet_socket_t *s, const cnet_event_t *ev,
                              void *ctx) {
  char w[64];

  (void)ctx;
  switch (ev->type) {
  case CNET_EV_CONNECT:
    trace_add(&EC.ct, "connect");
    ASSERT_EQ(0, cnet_socket_end(s, "ping", 4, NULL, NULL));
    break;
  case CNET_EV_DATA:
    ASSERT(EC.rx_len + ev->data.len <= sizeof(EC.rx));
    if (EC.rx_len == 0)
      trace_add(&EC.ct, "data");
    memcpy(EC.rx + EC.rx_len, ev->data.base, ev->data.len);
    EC.rx_len += ev->data.len;
    break;
  case CNET_EV_END:
    trace_add(&EC.ct, "end");
    break;
  case CNET_EV_ERROR:
    snprintf(w, sizeof(w), "error:%s", ev->error->code);
    trace_add(&EC.ct, w);
    break;
  case CNET_EV_CLOSE:
    trace_add(&EC.ct, ev->close.had_error ? "close(true)" : "close(false)");
    break;
  default:
    break;
  }
}

/* A client by the options form ({path, path_len}) that sends "ping" and
 * ends; cnet owns it. */
static void echo_client(uv_loop_t *loop, const char *path, size_t len) {
  static const cnet_event_type_t types[] = {CNET_EV_CONNECT, CNET_EV_DATA,
                                            CNET_EV_END, CNET_EV_ERROR,
                                            CNET_EV_CLOSE};
  cnet_connect_options_t o = {.path = path, .path_len = len};
  cnet_socket_t *c = cnet_create_connection(loop, &o, NULL, NULL);

  ASSERT_NOT_NULL(c);
  for (size_t i = 0; i < ARRAY_LEN(types); i++)
    ASSERT_EQ(0, cnet_socket_on(c, types[i], echo_client_event, NULL));
}

static void echo_reset(void) {
  memset(&EC, 0, sizeof(EC));
}

static void echo_check(int connections) {
  ASSERT_EQ(connections, EC.connections);
  ASSERT_EQ(4, EC.rx_len);
  ASSERT_MEM_EQ(EC.rx, "ping", 4);
}

/* AD-02: an IPC server's address() is its path, byte for byte. */
static void assert_pipe_address(const cnet_server_t *srv, const char *path,
                                size_t len) {
  cnet_address_t a;

  memset(&a, 0x55, sizeof(a));
  ASSERT_EQ(0, cnet_server_address(srv, &a));
  ASSERT_EQ(len, a.address_len);
  ASSERT_MEM_EQ(a.address, path, len);
  ASSERT_EQ('\0', a.address[len]);
  ASSERT_EQ(-1, a.port);
  ASSERT_EQ(0, a.family);
}

/* A connection listener that counts into *(int *)ctx and closes the server
 * at the first connection. */
static void count_and_close(cnet_server_t *srv, const cnet_event_t *ev,
                            void *ctx) {
  (void)ev;
  (*(int *)ctx)++;
  trace_add(&T, "connection");
  ASSERT_EQ(0, cnet_server_close(srv, NULL, NULL));
}

static void stop_loop(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  uv_stop(cnet_server_loop(srv));
}

/* Runs the loop until srv's next 'listening'. */
static void run_until_listening(uv_loop_t *loop, cnet_server_t *srv) {
  ASSERT_EQ(0, cnet_server_once(srv, CNET_EV_LISTENING, stop_loop, NULL));
  run_bounded(loop, 2000);
}

/* ============================================================================
 * Listen forms: options, port/host/backlog, path
 * ==========================================================================*/

/* LS-01/LS-09: listen(options) with host and backlog. */
TEST_CASE(ls01_listen_options_host_backlog) {
  uv_loop_t *loop = loop_new();
  int conns = 0;
  cnet_server_t *srv = server_new(loop, count_and_close, &conns);
  cnet_listen_options_t o = {.port = 0, .host = "127.0.0.1", .backlog = 17};
  cnet_address_t a;

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen(srv, &o, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_address(srv, &a));
  ASSERT_STR_EQ(a.address, "127.0.0.1");
  ASSERT_EQ(4, a.family);
  ASSERT_GT(a.port, 0);
  ASSERT_TCP_BACKLOG(AF_INET, a.port, 17);
  client(loop, a.port, NULL, end_on_connect, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "listening connection close");
  ASSERT_EQ(1, conns);
  ASSERT_TCP_BACKLOG(AF_INET, a.port, 0); /* gone */
  cnet_server_free(srv);
  loop_finish(loop);
}

/* LS-09: listen(port, host, backlog); the default backlog is 511. */
TEST_CASE(ls09_listen_port_host_backlog_default_511) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *a = server_new(loop, NULL, NULL);
  cnet_server_t *b = server_new(loop, NULL, NULL);
  int pa, pb;

  reset();
  ASSERT_EQ(0, cnet_server_listen_port(a, 0, "127.0.0.1", 33, srv_trace, "a"));
  ASSERT_EQ(0, cnet_server_listen_port(b, 0, "127.0.0.1", 0, srv_trace, "b"));
  pa = server_port(a);
  pb = server_port(b);
  ASSERT_NE(pa, pb);
  cnet_server_unref(a);
  cnet_server_unref(b);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "a:listening b:listening");
  ASSERT_TCP_BACKLOG(AF_INET, pa, 33);
  ASSERT_TCP_BACKLOG(AF_INET, pb, 511);
  cnet_server_free(a);
  cnet_server_free(b);
  loop_finish(loop);
}

/* LS-09 without a host: listen(port, backlog) on "::". */
TEST_CASE(ls09_listen_port_no_host_backlog) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  cnet_address_t a;
  bool v6 = have_ipv6();

  reset();
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, NULL, 44, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_address(srv, &a));
  ASSERT_STR_EQ(a.address, v6 ? "::" : "0.0.0.0");
  ASSERT_EQ(v6 ? 6 : 4, a.family);
  cnet_server_unref(srv);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "listening");
  ASSERT_TCP_BACKLOG(v6 ? AF_INET6 : AF_INET, a.port, 44);
  cnet_server_free(srv);
  loop_finish(loop);
}

/* LS-09 for paths: listen(path, backlog) and listen(path). */
TEST_CASE(ls09_listen_path_backlog) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *a = server_new(loop, NULL, NULL);
  cnet_server_t *b = server_new(loop, NULL, NULL);
  const char *pa = temp_socket_path();
  const char *pb = temp_socket_path();

  reset();
  ASSERT_EQ(0, cnet_server_listen_path(a, pa, 21, srv_trace, "a"));
  ASSERT_EQ(0, cnet_server_listen_path(b, pb, 0, srv_trace, "b"));
  ASSERT_UNIX_BACKLOG(pa, strlen(pa), 21);
  ASSERT_UNIX_BACKLOG(pb, strlen(pb), 511);
  assert_pipe_address(a, pa, strlen(pa));
  cnet_server_unref(a);
  cnet_server_unref(b);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "a:listening b:listening");
  cnet_server_free(a);
  cnet_server_free(b);
  loop_finish(loop);
  ASSERT_EQ(-1, access(pa, F_OK));
  ASSERT_EQ(-1, access(pb, F_OK));
}

/* LS-02, LS-06, AD-01: listen({}) -- no port, no path, no host -- is a
 * random port on "::" (dual-stack), backlog 511. */
TEST_CASE(ls02_ad01_listen_no_port_no_host) {
  uv_loop_t *loop = loop_new();
  int conns = 0;
  cnet_server_t *srv = server_new(loop, count_and_close, &conns);
  cnet_listen_options_t o;
  cnet_address_t a;

  reset();
  memset(&o, 0, sizeof(o));
  ASSERT_EQ(0, cnet_server_listen(srv, &o, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_address(srv, &a));
  ASSERT_GT(a.port, 0);
  ASSERT_LT(a.port, 65536);
  if (!have_ipv6()) {
    printf("# no IPv6 here: only the 0.0.0.0 fallback checked\n");
    ASSERT_STR_EQ(a.address, "0.0.0.0");
    ASSERT_EQ(4, a.family);
    ASSERT_TCP_BACKLOG(AF_INET, a.port, 511);
    client(loop, a.port, "127.0.0.1", end_on_connect, NULL);
  } else {
    ASSERT_STR_EQ(a.address, "::");
    ASSERT_EQ(2, a.address_len);
    ASSERT_EQ(6, a.family);
    ASSERT_TCP_BACKLOG(AF_INET6, a.port, 511);
    client(loop, a.port, "::1", end_on_connect, NULL);
  }
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "listening connection");
  ASSERT_EQ(1, conns);
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- LS-07: a host name is resolved first ------------------------------- */

static void localhost_listening(cnet_server_t *srv, const cnet_event_t *ev,
                                void *ctx) {
  cnet_address_t a;

  (void)ev;
  (void)ctx;
  trace_add(&T, "listening");
  ASSERT(cnet_server_listening(srv));
  ASSERT_EQ(0, cnet_server_address(srv, &a));
  if (a.family == 4)
    ASSERT_STR_EQ(a.address, "127.0.0.1");
  else if (a.family == 6)
    ASSERT_STR_EQ(a.address, "::1");
  else
    FAIL("family %d", a.family);
  ASSERT_GT(a.port, 0);
  ASSERT_EQ(0, cnet_server_close(srv, NULL, NULL));
}

TEST_CASE(ls07_listen_localhost_resolves_first) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  cnet_address_t a;

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_error, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "localhost", 0,
                                       localhost_listening, NULL));
  ASSERT(!cnet_server_listening(srv));
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(srv, &a));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "listening close");
  cnet_server_free(srv);
  loop_finish(loop);
}

/* Correction 1: a listen() while a name is still being looked up does not
 * throw; it supersedes the first, 'listening' fires once, and both
 * callbacks (each a once('listening')) run. The late lookup is ignored. */
static void close_when_listening(cnet_server_t *srv, const cnet_event_t *ev,
                                 void *ctx) {
  cnet_address_t a;

  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_server_address(srv, &a));
  ASSERT_STR_EQ(a.address, "127.0.0.1");
  cnet_server_close(srv, NULL, NULL);
}

TEST_CASE(ls07_second_listen_while_resolving_supersedes) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  cnet_address_t a;

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_error, NULL));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "localhost", 0, srv_trace,
                                       "first"));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, srv_trace,
                                       "second"));
  ASSERT(cnet_server_listening(srv)); /* an IP literal binds at once */
  ASSERT_EQ(CNET_ERR_SERVER_ALREADY_LISTEN,
            cnet_server_listen_port(srv, 0, NULL, 0, NULL, NULL));
  ASSERT_EQ(0, cnet_server_once(srv, CNET_EV_LISTENING, close_when_listening,
                                NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "first:listening second:listening");
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(srv, &a));
  cnet_server_free(srv);
  loop_finish(loop);
}

TEST_CASE(ls08_listen_unresolvable_name_enotfound) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);

  reset();
  memset(&E, 0, sizeof(E));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_error, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "nonexistent.invalid", 0,
                                       srv_trace, NULL));
  ASSERT(!cnet_server_listening(srv));
  ASSERT_EQ(0, E.n); /* emitted later */
  run_bounded(loop, 5000);
  ASSERT_STR_EQ(T.buf, "error");
  ASSERT_EQ(1, E.n);
  ASSERT_STR_EQ(E.err.code, "ENOTFOUND");
  ASSERT_EQ(UV_EAI_NONAME, E.err.errnum); /* Node: errno -3008 */
  ASSERT_STR_EQ(E.err.syscall, "getaddrinfo");
  ASSERT_STR_EQ(E.err.hostname, "nonexistent.invalid");
  ASSERT_STR_EQ(E.err.message, "getaddrinfo ENOTFOUND nonexistent.invalid");
  ASSERT(!E.listening_at_error);
  ASSERT(!cnet_server_listening(srv));
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- LE-03 ------------------------------------------------------------------
 */

static void relisten_port0(cnet_server_t *srv, const cnet_event_t *ev,
                           void *ctx) {
  (void)ev;
  (void)ctx;
  if (E.n == 1) /* LE-02: again at once, without a port this time */
    ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "192.0.2.1", 0, NULL, NULL));
}

TEST_CASE(le03_listen_foreign_address_eaddrnotavail) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  char want[128];
  int port = closed_port();

  reset();
  memset(&E, 0, sizeof(E));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_error, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, relisten_port0, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_LISTENING, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_port(srv, port, "192.0.2.1", 0, NULL, NULL));
  ASSERT_EQ(0, E.n);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "error error");
  ASSERT_EQ(2, E.n);
  /* The second error: port 0, so no ":0" in the message, port unset. */
  ASSERT_EQ(UV_EADDRNOTAVAIL, E.err.errnum);
  ASSERT_STR_EQ(E.err.code, "EADDRNOTAVAIL");
  ASSERT_STR_EQ(E.err.syscall, "listen");
  ASSERT_STR_EQ(E.err.address, "192.0.2.1");
  ASSERT_EQ(0, E.err.port);
  ASSERT_STR_EQ(E.err.message,
                "listen EADDRNOTAVAIL: address not available 192.0.2.1");
  ASSERT(!cnet_server_listening(srv));
  cnet_server_free(srv);
  loop_finish(loop);

  /* The first one, on its own. */
  loop = loop_new();
  srv = server_new(loop, NULL, NULL);
  reset();
  memset(&E, 0, sizeof(E));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_error, NULL));
  ASSERT_EQ(0, cnet_server_listen_port(srv, port, "192.0.2.1", 0, srv_trace,
                                       NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "error");
  ASSERT_EQ(UV_EADDRNOTAVAIL, E.err.errnum);
  ASSERT_STR_EQ(E.err.code, "EADDRNOTAVAIL");
  ASSERT_STR_EQ(E.err.syscall, "listen");
  ASSERT_STR_EQ(E.err.address, "192.0.2.1");
  ASSERT_EQ(port, E.err.port);
  snprintf(want, sizeof(want),
           "listen EADDRNOTAVAIL: address not available 192.0.2.1:%d", port);
  ASSERT_STR_EQ(E.err.message, want);
  ASSERT(!E.listening_at_error);
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- LE-05, IP-C-07, CL-07 -------------------------------------------------
 */

TEST_CASE(le05_ipc_path_in_missing_directory) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  char dir[64], path[96];

  reset();
  memset(&E, 0, sizeof(E));
  snprintf(dir, sizeof(dir), "/tmp/cnet-nodir-%ld", (long)getpid());
  rmdir(dir);
  ASSERT_EQ(-1, access(dir, F_OK));
  snprintf(path, sizeof(path), "%s/s.sock", dir);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_error, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_path(srv, path, 0, srv_trace, NULL));
  ASSERT_EQ(0, E.n);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "error");
  ASSERT_EQ(1, E.n);
  /* Node v20 here (libuv turns ENOENT into EACCES): EACCES. */
  if (E.err.errnum == UV_EACCES)
    assert_pipe_listen_error(&E.err, UV_EACCES, "EACCES", "permission denied",
                             path);
  else
    assert_pipe_listen_error(&E.err, UV_ENOENT, "ENOENT",
                             "no such file or directory", path);
  ASSERT(!cnet_server_listening(srv));
  ASSERT_EQ(-1, access(dir, F_OK)); /* nothing created */
  cnet_server_free(srv);
  loop_finish(loop);
}

/* IP-C-07: a stale socket file (its process gone) is not removed. */
TEST_CASE(ipc07_stale_socket_file_eaddrinuse_kept) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  const char *path = temp_socket_path();
  struct sockaddr_un un;
  struct stat st;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);

  reset();
  memset(&E, 0, sizeof(E));
  ASSERT_GE(fd, 0);
  memset(&un, 0, sizeof(un));
  un.sun_family = AF_UNIX;
  strcpy(un.sun_path, path);
  ASSERT_EQ(0, bind(fd, (struct sockaddr *)&un, sizeof(un)));
  close(fd); /* the file stays, nobody listens */
  ASSERT_EQ(0, stat(path, &st));
  ASSERT(S_ISSOCK(st.st_mode));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_error, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_path(srv, path, 0, srv_trace, NULL));
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "error");
  assert_pipe_listen_error(&E.err, UV_EADDRINUSE, "EADDRINUSE",
                           "address already in use", path);
  ASSERT_EQ(0, cnet_server_close(srv, NULL, NULL));
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "error close");
  ASSERT_EQ(0, stat(path, &st)); /* close() did not take it either */
  ASSERT(S_ISSOCK(st.st_mode));
  cnet_server_free(srv);
  loop_finish(loop);
  ASSERT_EQ(0, access(path, F_OK));
}

static struct {
  const char *path;
  int a_connections;
  uv_loop_t *loop;
} C7;

static void c7_b_closed(cnet_server_t *srv, const cnet_event_t *ev,
                        void *ctx) {
  struct stat st;

  (void)srv;
  (void)ctx;
  trace_add(&T, "b:close");
  ASSERT_NOT_NULL(ev->close.error); /* it never listened */
  ASSERT_EQ(CNET_ERR_SERVER_NOT_RUNNING, ev->close.error->errnum);
  /* A's file is still there, and A still answers on it. */
  ASSERT_EQ(0, stat(C7.path, &st));
  ASSERT(S_ISSOCK(st.st_mode));
  echo_client(C7.loop, C7.path, 0);
}

static void c7_b_error(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  srv_error(srv, ev, ctx);
  ASSERT_EQ(0, cnet_server_close(srv, c7_b_closed, NULL));
}

/* CL-07 with IP-C-07: after EADDRINUSE on a path another server holds,
 * close() must not remove that server's file. */
TEST_CASE(cl07_failed_listen_close_keeps_other_servers_file) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *a = server_new(loop, echo_connection, NULL);
  cnet_server_t *b = server_new(loop, NULL, NULL);
  const char *path = temp_socket_path();

  reset();
  echo_reset();
  memset(&E, 0, sizeof(E));
  C7.path = path;
  C7.loop = loop;
  ASSERT_EQ(0, cnet_server_on(a, CNET_EV_CLOSE, srv_trace, "a"));
  ASSERT_EQ(0, cnet_server_listen_path(a, path, 0, NULL, NULL));
  ASSERT_EQ(0, cnet_server_on(b, CNET_EV_ERROR, c7_b_error, "b"));
  ASSERT_EQ(0, cnet_server_listen_path(b, path, 0, srv_trace, "b"));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "b:error b:close a:close");
  assert_pipe_listen_error(&E.err, UV_EADDRINUSE, "EADDRINUSE",
                           "address already in use", path);
  echo_check(1);
  ASSERT_STR_EQ(EC.ct.buf, "connect data end close(false)");
  ASSERT_EQ(-1, access(path, F_OK)); /* A's close removed it */
  cnet_server_free(a);
  cnet_server_free(b);
  loop_finish(loop);
}

/* ============================================================================
 * listen({fd}), listen(handle)
 * ==========================================================================*/

static int tcp_socket_bound(int *port) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  ASSERT_GE(fd, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(0, bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
  ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&sa, &len));
  *port = ntohs(sa.sin_port);
  return fd;
}

/* LS-17: a bound TCP socket made with socket()+bind(). */
TEST_CASE(ls17_listen_fd_bound_tcp) {
  uv_loop_t *loop = loop_new();
  int conns = 0, port;
  cnet_server_t *srv = server_new(loop, count_and_close, &conns);
  int fd = tcp_socket_bound(&port);
  cnet_address_t a;

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_fd(srv, fd, 9, srv_trace, NULL));
  ASSERT_EQ(CNET_ERR_SERVER_ALREADY_LISTEN,
            cnet_server_listen_port(srv, 0, NULL, 0, NULL, NULL));
  run_until_listening(loop, srv); /* nothing connects yet */
  ASSERT_STR_EQ(T.buf, "listening");
  ASSERT(cnet_server_listening(srv));
  ASSERT_EQ(0, cnet_server_address(srv, &a));
  ASSERT_STR_EQ(a.address, "127.0.0.1");
  ASSERT_EQ(4, a.family);
  ASSERT_EQ(port, a.port);
  ASSERT_TCP_BACKLOG(AF_INET, port, 9);
  client(loop, port, NULL, end_on_connect, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "listening connection close");
  ASSERT_EQ(1, conns);
  assert_fd_closed(fd); /* the server took it over and closed it */
  cnet_server_free(srv);
  loop_finish(loop);
}

/* LS-17: an unbound TCP socket gets a random port on 0.0.0.0. */
TEST_CASE(ls17_listen_fd_unbound_tcp) {
  uv_loop_t *loop = loop_new();
  int conns = 0;
  cnet_server_t *srv = server_new(loop, count_and_close, &conns);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cnet_address_t a;

  reset();
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_fd(srv, fd, 0, srv_trace, NULL));
  run_until_listening(loop, srv);
  ASSERT_STR_EQ(T.buf, "listening");
  ASSERT_EQ(0, cnet_server_address(srv, &a));
  ASSERT_STR_EQ(a.address, "0.0.0.0");
  ASSERT_EQ(4, a.family);
  ASSERT_GT(a.port, 0);
  ASSERT_TCP_BACKLOG(AF_INET, a.port, 511);
  client(loop, a.port, NULL, end_on_connect, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "listening connection close");
  ASSERT_EQ(1, conns);
  assert_fd_closed(fd);
  cnet_server_free(srv);
  loop_finish(loop);
}

/* LS-17: a bound AF_UNIX socket. */
TEST_CASE(ls17_listen_fd_bound_unix) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, echo_connection, NULL);
  const char *path = temp_socket_path();
  struct sockaddr_un un;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);

  reset();
  echo_reset();
  ASSERT_GE(fd, 0);
  memset(&un, 0, sizeof(un));
  un.sun_family = AF_UNIX;
  strcpy(un.sun_path, path);
  ASSERT_EQ(0, bind(fd, (struct sockaddr *)&un, sizeof(un)));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_fd(srv, fd, 0, srv_trace, NULL));
  run_until_listening(loop, srv);
  ASSERT_STR_EQ(T.buf, "listening");
  assert_pipe_address(srv, path, strlen(path));
  ASSERT_UNIX_BACKLOG(path, strlen(path), 511);
  echo_client(loop, path, 0);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "listening close");
  echo_check(1);
  ASSERT_STR_EQ(EC.ct.buf, "connect data end close(false)");
  assert_fd_closed(fd);
  cnet_server_free(srv);
  loop_finish(loop);
}

/* LS-18: a regular file is no socket: an asynchronous 'error' exactly like
 * Node's, and the descriptor is still the caller's, still open. */
TEST_CASE(ls18_listen_fd_regular_file_einval) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  const char *path = temp_socket_path();
  cnet_address_t a;
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);

  reset();
  memset(&E, 0, sizeof(E));
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_error, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_fd(srv, fd, 0, srv_trace, NULL));
  ASSERT_EQ(0, E.n); /* never from inside the call */
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "error");
  ASSERT_EQ(1, E.n);
  ASSERT_EQ(UV_EINVAL, E.err.errnum);
  ASSERT_STR_EQ(E.err.code, "EINVAL");
  ASSERT_STR_EQ(E.err.syscall, "listen");
  ASSERT_STR_EQ(E.err.message, "listen EINVAL: invalid argument");
  ASSERT_STR_EQ(E.err.address, "");
  ASSERT_EQ(0, E.err.port); /* Node: no port property */
  ASSERT(!E.listening_at_error);
  ASSERT(!cnet_server_listening(srv));
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(srv, &a));
  ASSERT(fd_is_open(fd));
  cnet_server_free(srv);
  loop_finish(loop);
  ASSERT(fd_is_open(fd)); /* still ours after the server is gone */
  ASSERT_EQ(4, write(fd, "abcd", 4));
  ASSERT_EQ(0, close(fd));
}

TEST_CASE(ls17_listen_fd_misuse_fails_at_once) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  int port, fd2 = socket(AF_INET, SOCK_STREAM, 0);
  int fd = tcp_socket_bound(&port);

  reset();
  ASSERT_GE(fd2, 0);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(UV_EBADF, cnet_server_listen_fd(srv, -1, 0, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  ASSERT(!cnet_server_listening(srv));
  ASSERT_EQ(0, cnet_server_listen_fd(srv, fd, 0, srv_trace, NULL));
  ASSERT_EQ(CNET_ERR_SERVER_ALREADY_LISTEN,
            cnet_server_listen_fd(srv, fd2, 0, srv_trace, NULL));
  ASSERT_STR_EQ(cnet_last_error()->message,
                "Listen method has been called more than once without "
                "closing.");
  ASSERT(fd_is_open(fd2)); /* untouched */
  cnet_server_unref(srv);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "listening");
  ASSERT_EQ(port, server_port(srv));
  cnet_server_free(srv);
  loop_finish(loop);
  assert_fd_closed(fd);
  ASSERT(fd_is_open(fd2));
  close(fd2);
}

/* ---- listen(server) -------------------------------------------------------- */

static struct {
  uv_loop_t *loop;
  cnet_server_t *a, *b;
  int port;
  int na, nb;         /* connections each server received */
  int na_at_close;    /* A's count when it was closed */
  int phase;          /* 1: both listen; 2: A closed */
  int closes;
} SH;

static void sh_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  (void)ev;
  (*(int *)ctx)++;
  if (SH.phase == 1 && SH.na + SH.nb == 8) {
    SH.phase = 2;
    SH.na_at_close = SH.na;
    ASSERT_EQ(0, cnet_server_close(SH.a, NULL, NULL));
    ASSERT(!cnet_server_listening(SH.a));
    ASSERT(cnet_server_listening(SH.b));
    for (int i = 0; i < 4; i++)
      client(SH.loop, SH.port, NULL, end_on_connect, NULL);
  } else if (SH.phase == 2 && SH.na + SH.nb == 12) {
    ASSERT_EQ(0, cnet_server_close(SH.b, NULL, NULL));
  }
  (void)srv;
}

static void sh_closed(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)srv;
  (void)ctx;
  ASSERT_NULL(ev->close.error);
  SH.closes++;
}

/* LS-17: listen(otherServer): both accept from one socket; closing one
 * leaves the other accepting. */
TEST_CASE(ls17_listen_server_shares_socket) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *c;
  cnet_address_t ab;

  reset();
  memset(&SH, 0, sizeof(SH));
  SH.loop = loop;
  SH.phase = 1;
  SH.a = server_new(loop, sh_connection, &SH.na);
  SH.b = server_new(loop, sh_connection, &SH.nb);
  c = server_new(loop, NULL, NULL);
  ASSERT_EQ(0, cnet_server_on(SH.a, CNET_EV_CLOSE, sh_closed, NULL));
  ASSERT_EQ(0, cnet_server_on(SH.b, CNET_EV_CLOSE, sh_closed, NULL));
  ASSERT_EQ(0, cnet_server_on(SH.b, CNET_EV_ERROR, srv_trace, "b"));

  /* A server that is not listening has nothing to share. */
  ASSERT_EQ(CNET_ERR_SERVER_NOT_RUNNING,
            cnet_server_listen_server(SH.b, c, 0, srv_trace, "b"));
  ASSERT_STR_EQ(cnet_last_error()->code, "ERR_SERVER_NOT_RUNNING");
  ASSERT_STR_EQ(cnet_last_error()->message, "Server is not running.");
  ASSERT(!cnet_server_listening(SH.b));
  ASSERT_EQ(0, cnet_server_listener_count(SH.b, CNET_EV_LISTENING));

  ASSERT_EQ(0, cnet_server_listen_port(SH.a, 0, "127.0.0.1", 0, NULL, NULL));
  SH.port = server_port(SH.a);
  ASSERT_EQ(0, cnet_server_listen_server(SH.b, SH.a, 0, srv_trace, "b"));
  run_until_listening(loop, SH.b);
  ASSERT_STR_EQ(T.buf, "b:listening");
  ASSERT(cnet_server_listening(SH.b));
  ASSERT_EQ(0, cnet_server_address(SH.b, &ab));
  ASSERT_STR_EQ(ab.address, "127.0.0.1");
  ASSERT_EQ(SH.port, ab.port);
  ASSERT_EQ(4, ab.family);
  for (int i = 0; i < 8; i++)
    client(loop, SH.port, NULL, end_on_connect, NULL);
  run_bounded(loop, 5000);
  ASSERT_EQ(2, SH.phase);
  ASSERT_EQ(12, SH.na + SH.nb);
  ASSERT_EQ(SH.na_at_close, SH.na); /* nothing reached A after its close */
  ASSERT_EQ(2, SH.closes);
  ASSERT_STR_EQ(T.buf, "b:listening");
  cnet_server_free(SH.a);
  cnet_server_free(SH.b);
  cnet_server_free(c);
  loop_finish(loop);
}

/* ---- listen(socket) -------------------------------------------------------- */

static struct {
  cnet_server_t *s, *t;
  cnet_socket_t *c;
} LK;

static void lk_t_error(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  srv_error(srv, ev, ctx);
  cnet_socket_destroy(LK.c, NULL);
  ASSERT_EQ(0, cnet_server_close(LK.s, NULL, NULL));
}

static void lk_connect(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  trace_add(&T, "connect");
  LK.t = server_new(cnet_socket_loop(c), NULL, NULL);
  ASSERT_EQ(0, cnet_server_on(LK.t, CNET_EV_ERROR, lk_t_error, "t"));
  ASSERT_EQ(0, cnet_server_on(LK.t, CNET_EV_CLOSE, srv_trace, "t"));
  ASSERT_EQ(0, cnet_server_listen_socket(LK.t, c, 0, srv_trace, "t"));
  ASSERT_EQ(0, E.n);
}

/* listen(handle) with a connected TCP socket: Linux's listen(2) says EINVAL;
 * Node v20: "listen EINVAL: invalid argument", address null, port -1. */
TEST_CASE(ls17_listen_socket_connected_einval) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *fresh = cnet_socket_new(loop, NULL);

  reset();
  memset(&E, 0, sizeof(E));
  memset(&LK, 0, sizeof(LK));
  LK.s = server_new(loop, NULL, NULL);
  /* A socket with no connection has no descriptor to share. */
  ASSERT_EQ(UV_EBADF, cnet_server_listen_socket(LK.s, fresh, 0, NULL, NULL));
  ASSERT(!cnet_server_listening(LK.s));
  cnet_socket_free(fresh);
  ASSERT_EQ(0, cnet_server_listen_port(LK.s, 0, "127.0.0.1", 0, NULL, NULL));
  LK.c = client(loop, server_port(LK.s), NULL, lk_connect, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "connect t:error");
  ASSERT_EQ(1, E.n);
  ASSERT_EQ(UV_EINVAL, E.err.errnum);
  ASSERT_STR_EQ(E.err.code, "EINVAL");
  ASSERT_STR_EQ(E.err.syscall, "listen");
  ASSERT_STR_EQ(E.err.message, "listen EINVAL: invalid argument");
  ASSERT_STR_EQ(E.err.address, "");
  ASSERT_EQ(-1, E.err.port);
  ASSERT(!cnet_server_listening(LK.t));
  cnet_server_free(LK.t);
  cnet_server_free(LK.s);
  loop_finish(loop);
}

/* ============================================================================
 * ipv6Only, reusePort, exclusive
 * ==========================================================================*/

static struct {
  int refused, connected;
  cnet_error_t err;
} V6;

static void v6_client_event(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  (void)ctx;
  if (ev->type == CNET_EV_ERROR) {
    V6.refused++;
    V6.err = *ev->error;
  } else if (ev->type == CNET_EV_CONNECT) {
    V6.connected++;
    ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
  }
}

/* LS-13: ipv6Only on "::": IPv4 clients are refused, and 0.0.0.0 on the
 * same port is free. */
TEST_CASE(ls13_ipv6_only_refuses_ipv4) {
  uv_loop_t *loop;
  cnet_server_t *a, *b;
  cnet_listen_options_t o = {.host = "::", .ipv6_only = true};
  cnet_socket_t *c4, *c6;
  cnet_address_t addr;
  char want[96];
  int port;

  if (!have_ipv6()) {
    printf("# no IPv6 loopback here: skipped\n");
    return;
  }
  loop = loop_new();
  a = server_new(loop, NULL, NULL);
  b = server_new(loop, NULL, NULL);
  reset();
  memset(&V6, 0, sizeof(V6));
  ASSERT_EQ(0, cnet_server_listen(a, &o, srv_trace, "a"));
  ASSERT_EQ(0, cnet_server_address(a, &addr));
  ASSERT_STR_EQ(addr.address, "::");
  ASSERT_EQ(6, addr.family);
  port = addr.port;
  ASSERT_EQ(0, cnet_server_on(a, CNET_EV_CONNECTION, srv_trace, "a"));
  c4 = client(loop, port, "127.0.0.1", NULL, NULL);
  ASSERT_EQ(0, cnet_socket_on(c4, CNET_EV_ERROR, v6_client_event, NULL));
  ASSERT_EQ(0, cnet_socket_on(c4, CNET_EV_CONNECT, sock_trace, "c4"));
  cnet_server_unref(a);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "a:listening");
  ASSERT_EQ(1, V6.refused);
  ASSERT_EQ(UV_ECONNREFUSED, V6.err.errnum);
  ASSERT_STR_EQ(V6.err.code, "ECONNREFUSED");
  ASSERT_STR_EQ(V6.err.address, "127.0.0.1");
  ASSERT_EQ(port, V6.err.port);
  snprintf(want, sizeof(want), "connect ECONNREFUSED 127.0.0.1:%d", port);
  ASSERT_STR_EQ(V6.err.message, want);

  /* IPv6 clients do reach it. */
  c6 = client(loop, port, "::1", NULL, NULL);
  ASSERT_EQ(0, cnet_socket_on(c6, CNET_EV_CONNECT, v6_client_event, NULL));
  ASSERT_EQ(0, cnet_socket_on(c6, CNET_EV_ERROR, sock_trace, "c6"));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "a:listening a:connection");
  ASSERT_EQ(1, V6.connected);

  /* 0.0.0.0 on the same port is free. */
  ASSERT_EQ(0, cnet_server_on(b, CNET_EV_ERROR, srv_trace, "b"));
  ASSERT_EQ(0, cnet_server_listen_port(b, port, "0.0.0.0", 0, srv_trace, "b"));
  cnet_server_unref(b);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "a:listening a:connection b:listening");
  ASSERT_EQ(0, cnet_server_address(b, &addr));
  ASSERT_STR_EQ(addr.address, "0.0.0.0");
  ASSERT_EQ(port, addr.port);
  ASSERT_EQ(4, addr.family);
  cnet_server_free(a);
  cnet_server_free(b);
  loop_finish(loop);
}

/* LS-13, the other half: dual-stack "::" holds the IPv4 port too. */
TEST_CASE(ls13_dual_stack_holds_ipv4_port) {
  uv_loop_t *loop;
  cnet_server_t *a, *b;
  char want[96];
  int port;

  if (!have_ipv6()) {
    printf("# no IPv6 loopback here: skipped\n");
    return;
  }
  loop = loop_new();
  a = server_new(loop, NULL, NULL);
  b = server_new(loop, NULL, NULL);
  reset();
  memset(&E, 0, sizeof(E));
  ASSERT_EQ(0, cnet_server_listen_port(a, 0, "::", 0, NULL, NULL));
  port = server_port(a);
  ASSERT_EQ(0, cnet_server_on(b, CNET_EV_ERROR, srv_error, "b"));
  ASSERT_EQ(0, cnet_server_listen_port(b, port, "0.0.0.0", 0, srv_trace, "b"));
  cnet_server_unref(a);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "b:error");
  ASSERT_EQ(UV_EADDRINUSE, E.err.errnum);
  ASSERT_STR_EQ(E.err.code, "EADDRINUSE");
  ASSERT_STR_EQ(E.err.syscall, "listen");
  ASSERT_STR_EQ(E.err.address, "0.0.0.0");
  ASSERT_EQ(port, E.err.port);
  snprintf(want, sizeof(want),
           "listen EADDRINUSE: address already in use 0.0.0.0:%d", port);
  ASSERT_STR_EQ(E.err.message, want);
  cnet_server_free(a);
  cnet_server_free(b);
  loop_finish(loop);
}

static cnet_server_t *listen_reuse(uv_loop_t *loop, int port, bool reuse,
                                   const char *name) {
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  cnet_listen_options_t o = {
      .port = port, .host = "127.0.0.1", .reuse_port = reuse};

  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_error, (void *)name));
  ASSERT_EQ(0, cnet_server_listen(srv, &o, srv_trace, (void *)name));
  cnet_server_unref(srv);
  return srv;
}

/* LS-16: reusePort lets two servers bind one port; both must ask for it. */
TEST_CASE(ls16_reuse_port_same_loop) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *a, *b, *c, *d, *e;
  char want[96];
  int port, port2;

  reset();
  memset(&E, 0, sizeof(E));
  a = listen_reuse(loop, 0, true, "a");
  port = server_port(a);
  b = listen_reuse(loop, port, true, "b");
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "a:listening b:listening");
  ASSERT_EQ(port, server_port(b));
  ASSERT_EQ(0, E.n);

  c = listen_reuse(loop, port, false, "c"); /* c does not ask */
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "a:listening b:listening c:error");
  ASSERT_STR_EQ(E.err.code, "EADDRINUSE");
  ASSERT_EQ(port, E.err.port);
  snprintf(want, sizeof(want),
           "listen EADDRINUSE: address already in use 127.0.0.1:%d", port);
  ASSERT_STR_EQ(E.err.message, want);

  d = listen_reuse(loop, 0, false, "d"); /* d did not ask */
  port2 = server_port(d);
  e = listen_reuse(loop, port2, true, "e");
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "a:listening b:listening c:error d:listening e:error");
  ASSERT_STR_EQ(E.err.code, "EADDRINUSE");
  ASSERT_EQ(port2, E.err.port);
  ASSERT(!cnet_server_listening(c));
  ASSERT(!cnet_server_listening(e));
  cnet_server_free(a);
  cnet_server_free(b);
  cnet_server_free(c);
  cnet_server_free(d);
  cnet_server_free(e);
  loop_finish(loop);
}

typedef struct {
  uv_thread_t tid;
  uv_sem_t ready;
  uv_async_t stop;
  cnet_server_t *srv;
  int port; /* in: 0 or the port to share; out: the port */
  int listen_err;
  atomic_int connections;
} rp_thread_t;

static void rp_listening(cnet_server_t *srv, const cnet_event_t *ev,
                         void *ctx) {
  rp_thread_t *t = ctx;

  (void)ev;
  t->port = server_port(srv);
  uv_sem_post(&t->ready);
}

static void rp_error(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  rp_thread_t *t = ctx;

  (void)srv;
  t->listen_err = ev->error->errnum;
  uv_sem_post(&t->ready);
}

static void rp_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  rp_thread_t *t = ctx;

  (void)srv;
  (void)ev;
  atomic_fetch_add(&t->connections, 1);
}

static void rp_stop(uv_async_t *a) {
  rp_thread_t *t = a->data;

  cnet_server_close(t->srv, NULL, NULL);
  uv_close((uv_handle_t *)a, NULL);
}

static void rp_main(void *arg) {
  rp_thread_t *t = arg;
  uv_loop_t *loop = loop_new();
  cnet_listen_options_t o = {
      .port = t->port, .host = "127.0.0.1", .reuse_port = true};

  ASSERT_EQ(0, uv_async_init(loop, &t->stop, rp_stop));
  t->stop.data = t;
  t->srv = cnet_create_server(loop, NULL, rp_connection, t);
  ASSERT_NOT_NULL(t->srv);
  ASSERT_EQ(0, cnet_server_on(t->srv, CNET_EV_ERROR, rp_error, t));
  ASSERT_EQ(0, cnet_server_listen(t->srv, &o, rp_listening, t));
  run_bounded(loop, 8000);
  cnet_server_free(t->srv);
  loop_finish(loop);
}

static void rp_start(rp_thread_t *t, int port) {
  memset(t, 0, sizeof(*t));
  t->port = port;
  atomic_init(&t->connections, 0);
  ASSERT_EQ(0, uv_sem_init(&t->ready, 0));
  ASSERT_EQ(0, uv_thread_create(&t->tid, rp_main, t));
  uv_sem_wait(&t->ready);
  ASSERT_EQ(0, t->listen_err);
}

/* LS-16: two loops in two threads, one port; the kernel spreads 64
 * connections (hashing each 4-tuple) over both. */
TEST_CASE(ls16_reuse_port_two_threads_share_connections) {
  static rp_thread_t t1, t2;
  struct sockaddr_in sa;
  int total = 0, n1, n2;

  rp_start(&t1, 0);
  ASSERT_GT(t1.port, 0);
  rp_start(&t2, t1.port);
  ASSERT_EQ(t1.port, t2.port);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((uint16_t)t1.port);
  for (int i = 0; i < 64; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(0, connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
    close(fd);
  }
  for (int i = 0; i < 3000; i++) {
    total = atomic_load(&t1.connections) + atomic_load(&t2.connections);
    if (total >= 64)
      break;
    usleep(1000);
  }
  ASSERT_EQ(0, uv_async_send(&t1.stop));
  ASSERT_EQ(0, uv_async_send(&t2.stop));
  ASSERT_EQ(0, uv_thread_join(&t1.tid));
  ASSERT_EQ(0, uv_thread_join(&t2.tid));
  n1 = atomic_load(&t1.connections);
  n2 = atomic_load(&t2.connections);
  printf("# reusePort: %d + %d connections\n", n1, n2);
  ASSERT_GE(n1, 1);
  ASSERT_GE(n2, 1);
  ASSERT_EQ(64, n1 + n2);
  uv_sem_destroy(&t1.ready);
  uv_sem_destroy(&t2.ready);
}

/* LS-15: exclusive is accepted either way and changes nothing here. */
TEST_CASE(ls15_exclusive_accepted) {
  uv_loop_t *loop = loop_new();
  int conns = 0;
  cnet_server_t *a = server_new(loop, count_and_close, &conns);
  cnet_server_t *b = server_new(loop, NULL, NULL);
  cnet_listen_options_t oa = {.host = "127.0.0.1", .exclusive = true};
  cnet_listen_options_t ob = {.host = "127.0.0.1", .exclusive = false};

  reset();
  ASSERT_EQ(0, cnet_server_listen(a, &oa, srv_trace, "a"));
  ASSERT_EQ(0, cnet_server_listen(b, &ob, srv_trace, "b"));
  ASSERT_NE(server_port(a), server_port(b));
  client(loop, server_port(a), NULL, end_on_connect, NULL);
  cnet_server_unref(b);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "a:listening b:listening connection");
  ASSERT_EQ(1, conns);
  cnet_server_free(a);
  cnet_server_free(b);
  loop_finish(loop);
}

/* ============================================================================
 * IPC
 * ==========================================================================*/

/* IP-C-01 with the options forms on both sides; AD-02. */
TEST_CASE(ipc01_listen_options_path_connect_options_echo) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, echo_connection, NULL);
  const char *path = temp_socket_path();
  cnet_listen_options_t o = {.path = path};
  struct stat st;

  reset();
  echo_reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen(srv, &o, srv_trace, NULL));
  ASSERT(cnet_server_listening(srv));
  ASSERT_EQ(0, stat(path, &st));
  ASSERT(S_ISSOCK(st.st_mode));
  assert_pipe_address(srv, path, strlen(path));
  echo_client(loop, path, 0);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "listening close");
  echo_check(1);
  ASSERT_STR_EQ(EC.ct.buf, "connect data end close(false)");
  ASSERT_EQ(-1, access(path, F_OK));
  cnet_server_free(srv);
  loop_finish(loop);
}

static void expect_connect_error(const char *path, int errnum,
                                 const char *code) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.path = path};
  cnet_socket_t *c;
  char want[256];

  reset();
  memset(&SE, 0, sizeof(SE));
  c = cnet_create_connection(loop, &o, NULL, NULL);
  ASSERT_NOT_NULL(c);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CONNECT, sock_trace, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, sock_error, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, sock_trace, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "error close(true)");
  ASSERT_EQ(errnum, SE.err.errnum);
  ASSERT_STR_EQ(SE.err.code, code);
  ASSERT_STR_EQ(SE.err.syscall, "connect");
  ASSERT_STR_EQ(SE.err.address, path);
  ASSERT_EQ(0, SE.err.port);
  snprintf(want, sizeof(want), "connect %s %s", code, path);
  ASSERT_STR_EQ(SE.err.message, want);
  loop_finish(loop);
}

/* IP-C-02 through createConnection({path}). */
TEST_CASE(ipc02_create_connection_missing_path_enoent) {
  expect_connect_error(temp_socket_path(), UV_ENOENT, "ENOENT");
}

/* IP-C-03: a regular file is refused (Linux). */
TEST_CASE(ipc03_connect_regular_file_econnrefused) {
  const char *path = temp_socket_path();
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);

  ASSERT_GE(fd, 0);
  close(fd);
  expect_connect_error(path, UV_ECONNREFUSED, "ECONNREFUSED");
}

/* IP-C-04: a socket file with mode 0. Root may connect anyway, so a root
 * run drops to "nobody" in this case's own forked process (or skips). */
TEST_CASE(ipc04_connect_mode0_socket_eacces) {
  uv_loop_t *loop;
  cnet_server_t *srv;
  const char *path;
  char want[128];
  cnet_socket_t *c;

  if (geteuid() == 0) {
    const char *nofork = getenv("HARNESS_NO_FORK");
    if ((nofork != NULL && strcmp(nofork, "1") == 0) ||
        setgid(65534) != 0 || setuid(65534) != 0 || geteuid() == 0) {
      printf("# running as root: skipped\n");
      return;
    }
    printf("# root: dropped to uid 65534 for this case\n");
  }
  loop = loop_new();
  srv = server_new(loop, NULL, NULL);
  path = temp_socket_path();
  reset();
  memset(&SE, 0, sizeof(SE));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CONNECTION, srv_trace, "srv"));
  ASSERT_EQ(0, cnet_server_listen_path(srv, path, 0, NULL, NULL));
  ASSERT_EQ(0, chmod(path, 0));
  c = cnet_socket_new(loop, NULL);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CONNECT, sock_trace, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, sock_error, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, sock_trace, NULL));
  ASSERT_EQ(0, cnet_socket_connect_path(c, path, NULL, NULL));
  cnet_server_unref(srv);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "error close(true)");
  ASSERT_EQ(UV_EACCES, SE.err.errnum);
  ASSERT_STR_EQ(SE.err.code, "EACCES");
  ASSERT_STR_EQ(SE.err.syscall, "connect");
  ASSERT_STR_EQ(SE.err.address, path);
  snprintf(want, sizeof(want), "connect EACCES %s", path);
  ASSERT_STR_EQ(SE.err.message, want);
  cnet_socket_free(c);
  cnet_server_free(srv);
  loop_finish(loop);
}

static unsigned mode_with(uv_loop_t *loop, bool r, bool w) {
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  const char *path = temp_socket_path();
  cnet_listen_options_t o = {.path = path, .readable_all = r,
                             .writable_all = w};
  struct stat st;

  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen(srv, &o, NULL, NULL));
  ASSERT(cnet_server_listening(srv));
  ASSERT_EQ(0, stat(path, &st));
  ASSERT(S_ISSOCK(st.st_mode));
  cnet_server_free(srv);
  return (unsigned)(st.st_mode & 07777);
}

/* IP-C-05: readableAll / writableAll add o+r / o+w (and g, u) to what the
 * umask left, exactly as Node v20 (libuv's uv_pipe_chmod). */
TEST_CASE(ipc05_readable_all_writable_all_modes) {
  uv_loop_t *loop = loop_new();
  unsigned m;

  reset();
  umask(022);
  m = mode_with(loop, false, false);
  ASSERT_EQ(0755, m);
  ASSERT_EQ(0, m & S_IWOTH); /* "without": no o+w */
  m = mode_with(loop, false, true);
  ASSERT(m & S_IWOTH);
  ASSERT_EQ(0777, m);

  umask(077);
  m = mode_with(loop, false, false);
  ASSERT_EQ(0700, m);
  ASSERT_EQ(0, m & (S_IROTH | S_IWOTH));
  m = mode_with(loop, true, false);
  ASSERT(m & S_IROTH);
  ASSERT_EQ(0, m & S_IWOTH);
  ASSERT_EQ(0744, m);
  m = mode_with(loop, false, true);
  ASSERT_EQ(0, m & S_IROTH);
  ASSERT(m & S_IWOTH);
  ASSERT_EQ(0722, m);
  m = mode_with(loop, true, true);
  ASSERT_EQ(0766, m);
  umask(022);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, ""); /* no error anywhere */
  loop_finish(loop);
}

/* An abstract name: NUL, then "cnet-test-<pid>-<n>", padded with 'a' to
 * total bytes if total is not 0. Returns the length. */
static size_t abstract_name(char *buf, size_t size, size_t total) {
  static unsigned n;
  int len = snprintf(buf + 1, size - 1, "cnet-test-%ld-%u", (long)getpid(),
                     n++);

  buf[0] = '\0';
  ASSERT_GT(len, 0);
  if (total == 0)
    return (size_t)len + 1;
  ASSERT(total < size && (size_t)len + 1 <= total);
  memset(buf + 1 + len, 'a', total - 1 - (size_t)len);
  buf[total] = '\0';
  return total;
}

static bool file_exists(const char *p) {
  struct stat st;

  return lstat(p, &st) == 0;
}

/* IP-C-06: an abstract name listens and connects, leaves no file, and
 * address() gives it back with its NUL. */
TEST_CASE(ipc06_abstract_name_listen_connect) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, echo_connection, NULL);
  char name[128], shown[128], tmp[160];
  size_t len = abstract_name(name, sizeof(name), 0);
  cnet_listen_options_t o = {.path = name, .path_len = len};
  int got;

  reset();
  echo_reset();
  snprintf(shown, sizeof(shown), "@%s", name + 1);
  snprintf(tmp, sizeof(tmp), "/tmp/%s", name + 1);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen(srv, &o, srv_trace, NULL));
  ASSERT(cnet_server_listening(srv));
  assert_pipe_address(srv, name, len);
  got = unix_backlog(name, len); /* the kernel has it, by that name */
  if (diag_note_once(got))
    ASSERT_EQ(511, got);
  ASSERT(!file_exists(name + 1));
  ASSERT(!file_exists(shown));
  ASSERT(!file_exists(tmp));
  echo_client(loop, name, len);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "listening close");
  echo_check(1);
  ASSERT_STR_EQ(EC.ct.buf, "connect data end close(false)");
  got = unix_backlog(name, len);
  if (diag_note_once(got))
    ASSERT_EQ(0, got); /* gone */
  ASSERT(!file_exists(name + 1));
  ASSERT(!file_exists(shown));
  cnet_server_free(srv);
  loop_finish(loop);
}

TEST_CASE(ipc06_abstract_name_with_readable_all_throws) {
  static const char reason[] =
      "The argument 'options' can not set readableAll or writableAllt to "
      "true when path is abstract unix socket. Received ";
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  char name[128];
  size_t len = abstract_name(name, sizeof(name), 0);
  cnet_listen_options_t o = {.path = name, .path_len = len};

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  for (int i = 0; i < 3; i++) {
    o.readable_all = i != 1;
    o.writable_all = i != 0;
    ASSERT_EQ(CNET_ERR_INVALID_ARG_VALUE,
              cnet_server_listen(srv, &o, srv_trace, NULL));
    ASSERT_EQ(CNET_ERR_INVALID_ARG_VALUE, cnet_last_error()->errnum);
    ASSERT_STR_EQ(cnet_last_error()->code, "ERR_INVALID_ARG_VALUE");
    if (strncmp(cnet_last_error()->message, reason, strlen(reason)) != 0)
      FAIL("message: \"%s\"\n  expected to start with: \"%s\"",
           cnet_last_error()->message, reason);
    ASSERT_GT(strlen(cnet_last_error()->message), strlen(reason));
    ASSERT(!cnet_server_listening(srv));
    ASSERT_EQ(0, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  }
  ASSERT_EQ(0, unix_backlog(name, len) > 0);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, ""); /* nothing was started */
  cnet_server_free(srv);
  loop_finish(loop);
}

/* A directory under /tmp with a long name, for paths of exact lengths. */
static void long_dir(char *dir, size_t size) {
  int n = snprintf(dir, size, "/tmp/cnet-long-%ld-", (long)getpid());

  ASSERT(n > 0 && (size_t)n + 40 < size);
  memset(dir + n, 'd', 40);
  dir[n + 40] = '\0';
  rmdir(dir);
  ASSERT_EQ(0, mkdir(dir, 0700));
}

static void path_of_len(char *out, const char *dir, size_t len) {
  size_t d = strlen(dir);

  ASSERT(len > d + 1);
  memcpy(out, dir, d);
  out[d] = '/';
  memset(out + d + 1, 's', len - d - 1);
  out[len] = '\0';
  ASSERT_EQ(len, strlen(out));
}

static int dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;

  ASSERT_NOT_NULL(d);
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

static void too_long_at_once(uv_loop_t *loop, const char *path, size_t len) {
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  cnet_listen_options_t o = {.path = path, .path_len = len};
  cnet_connect_options_t co = {.path = path, .path_len = len};
  cnet_socket_t *c = cnet_socket_new(loop, NULL);

  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_trace, "srv"));
  ASSERT_EQ(UV_ENAMETOOLONG, cnet_server_listen(srv, &o, srv_trace, "srv"));
  ASSERT_STR_EQ(cnet_last_error()->code, "ENAMETOOLONG");
  ASSERT_EQ(UV_ENAMETOOLONG, cnet_last_error()->errnum);
  ASSERT(!cnet_server_listening(srv));
  ASSERT_EQ(0, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  if (path[0] != '\0')
    ASSERT_EQ(UV_ENAMETOOLONG, cnet_server_listen_path(srv, path, 0, NULL,
                                                       NULL));
  ASSERT_NOT_NULL(c);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, sock_trace, "client"));
  ASSERT_EQ(UV_ENAMETOOLONG, cnet_socket_connect(c, &co, NULL, NULL));
  ASSERT_STR_EQ(cnet_last_error()->code, "ENAMETOOLONG");
  ASSERT(!cnet_socket_connecting(c));
  if (path[0] != '\0')
    ASSERT_EQ(UV_ENAMETOOLONG, cnet_socket_connect_path(c, path, NULL, NULL));
  ASSERT_NULL(cnet_create_connection(loop, &co, NULL, NULL));
  ASSERT_EQ(UV_ENAMETOOLONG, cnet_last_error()->errnum);
  cnet_socket_free(c);
  cnet_server_free(srv);
}

/* IP-C-08: never truncated. 107 bytes and a NUL fit sun_path; 108 and 200
 * fail at once, for listen and connect, and create nothing. */
TEST_CASE(ipc08_path_length_limits) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv;
  char dir[128], p107[128], p108[128], p200[256];

  reset();
  echo_reset();
  long_dir(dir, sizeof(dir));
  path_of_len(p107, dir, 107);
  path_of_len(p108, dir, 108);
  path_of_len(p200, dir, 200);
  too_long_at_once(loop, p108, 0);
  too_long_at_once(loop, p200, 0);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "");
  ASSERT_EQ(0, dir_entries(dir)); /* nothing created, truncated or not */

  srv = server_new(loop, echo_connection, NULL);
  ASSERT_EQ(0, cnet_server_listen_path(srv, p107, 0, srv_trace, NULL));
  ASSERT(file_exists(p107));
  ASSERT_EQ(1, dir_entries(dir));
  assert_pipe_address(srv, p107, 107);
  echo_client(loop, p107, 0);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "listening");
  echo_check(1);
  ASSERT_STR_EQ(EC.ct.buf, "connect data end close(false)");
  ASSERT_EQ(0, dir_entries(dir)); /* removed on close */
  cnet_server_free(srv);
  loop_finish(loop);
  ASSERT_EQ(0, rmdir(dir));
}

/* IP-C-08 for abstract names: NUL + 107 bytes fill sun_path exactly and
 * work; one more fails at once. */
TEST_CASE(ipc08_abstract_name_length_limits) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv;
  char n108[160], n109[160];
  size_t l108 = abstract_name(n108, sizeof(n108), 108);
  size_t l109 = abstract_name(n109, sizeof(n109), 109);
  cnet_listen_options_t o = {.path = n108, .path_len = l108};

  reset();
  echo_reset();
  ASSERT_EQ(108, l108);
  ASSERT_EQ(109, l109);
  too_long_at_once(loop, n109, l109);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "");

  srv = server_new(loop, echo_connection, NULL);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen(srv, &o, srv_trace, NULL));
  assert_pipe_address(srv, n108, l108);
  {
    int got = unix_backlog(n108, l108);
    if (diag_note_once(got))
      ASSERT_EQ(511, got);
  }
  echo_client(loop, n108, l108);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "listening");
  echo_check(1);
  ASSERT_STR_EQ(EC.ct.buf, "connect data end close(false)");
  cnet_server_free(srv);
  loop_finish(loop);
}

/* Windows pipe names are plain relative file names on Linux, as in Node. */
TEST_CASE(ipc_windows_pipe_names_are_files_here) {
  char cwd[4096], dir[64], names[2][64];
  struct stat st;

  ASSERT_NOT_NULL(getcwd(cwd, sizeof(cwd)));
  snprintf(dir, sizeof(dir), "/tmp/cnet-np-XXXXXX");
  ASSERT_NOT_NULL(mkdtemp(dir));
  ASSERT_EQ(0, chdir(dir));
  snprintf(names[0], sizeof(names[0]), "\\\\.\\pipe\\cnet-%ld",
           (long)getpid());
  snprintf(names[1], sizeof(names[1]), "\\\\?\\pipe\\cnet-%ld-b",
           (long)getpid());
  ASSERT_MEM_EQ(names[0], "\\\\.\\pipe\\cnet-", 14);
  ASSERT_EQ('\\', names[0][0]); /* backslash, backslash, dot, ... */
  ASSERT_EQ('.', names[0][2]);
  for (int i = 0; i < 2; i++) {
    uv_loop_t *loop = loop_new();
    cnet_server_t *srv = server_new(loop, echo_connection, NULL);

    reset();
    echo_reset();
    ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_trace, NULL));
    ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
    ASSERT_EQ(0, cnet_server_listen_path(srv, names[i], 0, srv_trace, NULL));
    ASSERT_EQ(0, lstat(names[i], &st)); /* a file of that very name */
    ASSERT(S_ISSOCK(st.st_mode));
    ASSERT_EQ(1, dir_entries(dir));
    assert_pipe_address(srv, names[i], strlen(names[i]));
    echo_client(loop, names[i], 0);
    run_bounded(loop, 3000);
    ASSERT_STR_EQ(T.buf, "listening close");
    echo_check(1);
    ASSERT_STR_EQ(EC.ct.buf, "connect data end close(false)");
    ASSERT_EQ(-1, lstat(names[i], &st));
    ASSERT_EQ(0, dir_entries(dir));
    cnet_server_free(srv);
    loop_finish(loop);
  }
  ASSERT_EQ(0, chdir(cwd));
  ASSERT_EQ(0, rmdir(dir));
}

/* ---- AD-02, AD-03 for IPC ----------------------------------------------- */

static void ad_close(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  cnet_address_t a;

  (void)ctx;
  ASSERT_NULL(ev->close.error);
  ASSERT(!cnet_server_listening(srv));
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(srv, &a));
  trace_add(&T, "close");
}

TEST_CASE(ad02_ad03_ipc_address_around_listen_and_close) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  const char *path = temp_socket_path();
  cnet_address_t a;

  reset();
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(srv, &a));
  ASSERT_EQ(0, cnet_server_listen_path(srv, path, 0, srv_trace, NULL));
  assert_pipe_address(srv, path, strlen(path)); /* already, as Node */
  ASSERT_EQ(0, cnet_server_close(srv, ad_close, NULL));
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(srv, &a));
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "close");
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(srv, &a));
  ASSERT_EQ(-1, access(path, F_OK));
  cnet_server_free(srv);
  loop_finish(loop);
}

/* The server's block_list (beyond Node v20; Node v22.13's
 * net.Server({blockList})): a peer the list blocks is closed before any
 * 'connection', counted by cnet_server_blocked() and reported with 'drop'
 * (ev->drop.blocked true), where Node closes it silently. Rules are
 * checked per connection, so rules added later apply; IPv4 rules match
 * IPv4-mapped peers of a dual-stack server (BL-03); IPC peers have no IP
 * and are never blocked (Node checks only handles with getpeername).
 *
 * Peers choose their source address with local_address: on Linux any of
 * 127.0.0.0/8 can reach a server on 127.0.0.1.
 *
 * Only cnet_block_list_new / add_address / add_subnet / free are used: the
 * BlockList itself is tested in test-block-list.c. */
#include "harness.h"

/* ---- the server ---------------------------------------------------------- */

typedef struct {
  int conns, drops, blocked_drops;
  cnet_address_t drop_local, drop_remote; /* of the last 'drop' */
  cnet_address_t conn_remote;             /* of the last 'connection' */
  bool hold;                              /* keep accepted sockets open */
  cnet_socket_t *held[4];
  int n_held;
  char order[256]; /* "connection drop(blocked) drop(max)" */
} srv_t;

static void order_add(srv_t *v, const char *w) {
  size_t n = strlen(v->order);
  snprintf(v->order + n, sizeof(v->order) - n, "%s%s", n ? " " : "", w);
}

static void ignore_error(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
}

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  srv_t *v = ctx;
  cnet_socket_t *c = ev->connection;

  (void)srv;
  v->conns++;
  order_add(v, "connection");
  cnet_socket_remote_address(c, &v->conn_remote); /* none for IPC */
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, ignore_error, NULL));
  if (v->hold) {
    ASSERT(v->n_held < 4);
    v->held[v->n_held++] = c;
  } else {
    ASSERT_EQ(0, cnet_socket_end(c, "hi", 2, NULL, NULL));
  }
}

static void on_drop(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  srv_t *v = ctx;

  (void)srv;
  v->drops++;
  if (ev->drop.blocked)
    v->blocked_drops++;
  order_add(v, ev->drop.blocked ? "drop(blocked)" : "drop(max)");
  ASSERT_NOT_NULL(ev->drop.local);
  ASSERT_NOT_NULL(ev->drop.remote);
  v->drop_local = *ev->drop.local;
  v->drop_remote = *ev->drop.remote;
}

static cnet_server_t *start(uv_loop_t *loop, srv_t *v,
                            const cnet_block_list_t *bl, const char *host,
                            unsigned max_connections) {
  cnet_server_options_t o = {.block_list = bl,
                             .max_connections = max_connections};
  cnet_server_t *srv = cnet_create_server(loop, &o, on_connection, v);

  ASSERT_NOT_NULL(srv);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_DROP, on_drop, v));
  cnet_server_unref(srv); /* the clients keep the loop alive */
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, host, 0, NULL, NULL));
  return srv;
}

/* ---- clients ---------------------------------------------------------------
 */

typedef struct {
  trace_t t;
  int local_port;
  size_t data;
  bool closed;
} cli_t;

static void cli_event(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  cli_t *c = ctx;
  cnet_address_t a;

  switch (ev->type) {
  case CNET_EV_CONNECT:
    ASSERT_EQ(0, cnet_socket_address(s, &a));
    c->local_port = a.port;
    trace_add(&c->t, "connect");
    break;
  case CNET_EV_DATA:
    c->data += ev->data.len;
    break;
  case CNET_EV_ERROR:
    trace_add(&c->t, "error");
    break;
  case CNET_EV_CLOSE:
    c->closed = true;
    trace_add(&c->t, "close");
    break;
  default:
    break;
  }
}

/* A client to port from source address `from` (NULL: any). */
static cnet_socket_t *client(uv_loop_t *loop, cli_t *c, int port,
                             const char *host, const char *from) {
  cnet_connect_options_t o = {
      .port = port, .host = host, .local_address = from};
  cnet_socket_t *s = cnet_create_connection(loop, &o, NULL, NULL);
  static const cnet_event_type_t types[] = {CNET_EV_CONNECT, CNET_EV_DATA,
                                            CNET_EV_ERROR, CNET_EV_CLOSE};

  ASSERT_NOT_NULL(s);
  for (size_t i = 0; i < ARRAY_LEN(types); i++)
    ASSERT_EQ(0, cnet_socket_on(s, types[i], cli_event, c));
  return s;
}

static cnet_block_list_t *list_of(const char *addr, int family) {
  cnet_block_list_t *bl = cnet_block_list_new();

  ASSERT_NOT_NULL(bl);
  if (addr != NULL)
    ASSERT_EQ(0, cnet_block_list_add_address(bl, addr, family));
  return bl;
}

static void count_cb(cnet_server_t *srv, const cnet_error_t *err, size_t count,
                     void *ctx) {
  (void)srv;
  ASSERT_NULL(err);
  *(size_t *)ctx = count;
}

/* ======================================================================== */

/* A blocked peer: the server emits no 'connection' -- its listener never
 * runs -- but one 'drop' with blocked true and both addresses (the peer's
 * port is the client's local port); it is counted by cnet_server_blocked,
 * not by the open connections. The client's TCP handshake was done by the
 * kernel, so it sees 'connect', then its connection closed without a byte
 * of data. */
TEST_CASE(sbl01_blocked_peer_dropped_before_connection) {
  uv_loop_t *loop = loop_new();
  srv_t v = {0};
  cli_t c = {0};
  size_t count = 99;
  cnet_block_list_t *bl = list_of("127.0.0.1", 4);
  cnet_server_t *srv = start(loop, &v, bl, "127.0.0.1", 0);
  int port = server_port(srv);

  client(loop, &c, port, "127.0.0.1", NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(v.order, "drop(blocked)");
  ASSERT_EQ(0, v.conns);
  ASSERT_EQ(1, v.blocked_drops);
  ASSERT_EQ(1, cnet_server_blocked(srv));
  ASSERT_EQ(0, cnet_server_connections(srv));
  ASSERT_STR_EQ(v.drop_local.address, "127.0.0.1");
  ASSERT_EQ(port, v.drop_local.port);
  ASSERT_EQ(4, v.drop_local.family);
  ASSERT_STR_EQ(v.drop_remote.address, "127.0.0.1");
  ASSERT_EQ(c.local_port, v.drop_remote.port);
  ASSERT_EQ(4, v.drop_remote.family);
  ASSERT(c.closed);
  ASSERT_EQ(0, strncmp(c.t.buf, "connect", 7));
  ASSERT_EQ(0, c.data);
  ASSERT(cnet_server_listening(srv)); /* it keeps listening */
  ASSERT_EQ(0, cnet_server_accept_errors(srv));
  ASSERT_EQ(0, cnet_server_get_connections(srv, count_cb, &count));
  run_bounded(loop, 1000);
  ASSERT_EQ(0, count);
  cnet_server_free(srv);
  cnet_block_list_free(bl);
  loop_finish(loop);
}

/* Only blocked peers are turned away: with 127.0.0.2 blocked, peers from
 * 127.0.0.1 get 'connection' and data, peers from 127.0.0.2 are dropped;
 * several of each, and the counters add up. */
TEST_CASE(sbl02_only_blocked_sources_are_turned_away) {
  uv_loop_t *loop = loop_new();
  srv_t v = {0};
  cli_t ok[3], bad[3];
  cnet_block_list_t *bl = list_of("127.0.0.2", 4);
  cnet_server_t *srv = start(loop, &v, bl, "127.0.0.1", 0);
  int port = server_port(srv);

  memset(ok, 0, sizeof(ok));
  memset(bad, 0, sizeof(bad));
  for (int i = 0; i < 3; i++) {
    client(loop, &ok[i], port, "127.0.0.1", "127.0.0.1");
    client(loop, &bad[i], port, "127.0.0.1", "127.0.0.2");
  }
  run_bounded(loop, 3000);
  ASSERT_EQ(3, v.conns);
  ASSERT_EQ(3, v.drops);
  ASSERT_EQ(3, v.blocked_drops);
  ASSERT_EQ(3, cnet_server_blocked(srv));
  ASSERT_STR_EQ(v.drop_remote.address, "127.0.0.2");
  /* an admitted peer's address is the one the block check looked up */
  ASSERT_STR_EQ(v.conn_remote.address, "127.0.0.1");
  ASSERT_EQ(4, v.conn_remote.family);
  ASSERT_GT(v.conn_remote.port, 0);
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(2, ok[i].data);
    ASSERT(ok[i].closed);
    ASSERT_EQ(0, bad[i].data);
    ASSERT(bad[i].closed);
  }
  cnet_server_free(srv);
  cnet_block_list_free(bl);
  loop_finish(loop);
}

/* A subnet rule on a dual-stack server: IPv4 peers arrive as
 * ::ffff:127.0.0.x and an IPv4 rule still matches them (BL-03). Without an
 * IPv6 stack the server is plain IPv4 and the peer plain 127.0.0.1. */
TEST_CASE(sbl03_ipv4_rule_matches_mapped_peers_on_dual_stack) {
  uv_loop_t *loop = loop_new();
  srv_t v = {0};
  cli_t c = {0};
  cnet_block_list_t *bl = list_of(NULL, 0);
  cnet_server_t *srv;

  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "127.0.0.0", 8, 4));
  srv = start(loop, &v, bl, NULL, 0);
  client(loop, &c, server_port(srv), "127.0.0.1", NULL);
  run_bounded(loop, 3000);
  ASSERT_EQ(0, v.conns);
  ASSERT_EQ(1, v.blocked_drops);
  ASSERT_EQ(1, cnet_server_blocked(srv));
  if (have_ipv6()) {
    ASSERT_STR_EQ(v.drop_remote.address, "::ffff:127.0.0.1");
    ASSERT_EQ(6, v.drop_remote.family);
  } else {
    ASSERT_STR_EQ(v.drop_remote.address, "127.0.0.1");
  }
  ASSERT(c.closed);
  cnet_server_free(srv);
  cnet_block_list_free(bl);
  loop_finish(loop);
}

/* An IPv6 rule blocks an IPv6 peer (::1), and an IPv4 rule does not. */
TEST_CASE(sbl04_ipv6_rule_blocks_ipv6_peer) {
  uv_loop_t *loop;
  srv_t v = {0}, w = {0};
  cli_t c = {0}, d = {0};
  cnet_block_list_t *bl6, *bl4;
  cnet_server_t *srv6, *srv4;

  if (!have_ipv6())
    return;
  loop = loop_new();
  bl6 = list_of("::1", 6);
  bl4 = list_of("127.0.0.1", 4);
  srv6 = start(loop, &v, bl6, "::1", 0);
  srv4 = start(loop, &w, bl4, "::1", 0);
  client(loop, &c, server_port(srv6), "::1", NULL);
  client(loop, &d, server_port(srv4), "::1", NULL);
  run_bounded(loop, 3000);
  ASSERT_EQ(0, v.conns);
  ASSERT_EQ(1, v.blocked_drops);
  ASSERT_STR_EQ(v.drop_remote.address, "::1");
  ASSERT_EQ(6, v.drop_remote.family);
  ASSERT_EQ(1, w.conns);
  ASSERT_EQ(0, w.drops);
  ASSERT_EQ(2, d.data);
  cnet_server_free(srv6);
  cnet_server_free(srv4);
  cnet_block_list_free(bl6);
  cnet_block_list_free(bl4);
  loop_finish(loop);
}

/* ---- block_list and max_connections ----------------------------------------
 */

static struct {
  uv_loop_t *loop;
  srv_t *v;
  int port;
  cli_t b, c;
  int step;
} MX;

static void mx_next(cnet_server_t *srv, const cnet_event_t *ev, void *ctx);

static void mx_start_c(void) {
  client(MX.loop, &MX.c, MX.port, "127.0.0.1", "127.0.0.1");
}

static void mx_next(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)srv;
  (void)ctx;
  /* Registered after on_connection / on_drop: v is up to date. */
  if (ev->type == CNET_EV_CONNECTION && MX.step == 0) {
    MX.step = 1; /* A is in: now a blocked peer */
    client(MX.loop, &MX.b, MX.port, "127.0.0.1", "127.0.0.2");
  } else if (ev->type == CNET_EV_DROP && MX.step == 1) {
    MX.step = 2; /* B was dropped: now an allowed peer over the limit */
    mx_start_c();
  } else if (ev->type == CNET_EV_DROP && MX.step == 2) {
    MX.step = 3;
    for (int i = 0; i < MX.v->n_held; i++)
      cnet_socket_destroy(MX.v->held[i], NULL);
  }
}

/* Two reasons for 'drop', told apart: with max_connections 1 and A held
 * open, a blocked peer B is 'drop' blocked=true, an allowed peer C is
 * 'drop' blocked=false (the limit). The blocked one is not a connection:
 * it never took A's slot or the count; cnet_server_blocked counts only
 * the block_list's. */
TEST_CASE(sbl05_blocked_and_max_connections_drops_told_apart) {
  uv_loop_t *loop = loop_new();
  srv_t v = {0};
  cli_t a = {0};
  cnet_block_list_t *bl = list_of("127.0.0.2", 4);
  cnet_server_t *srv = start(loop, &v, bl, "127.0.0.1", 1);

  memset(&MX, 0, sizeof(MX));
  v.hold = true;
  MX.loop = loop;
  MX.v = &v;
  MX.port = server_port(srv);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CONNECTION, mx_next, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_DROP, mx_next, NULL));
  client(loop, &a, MX.port, "127.0.0.1", "127.0.0.1");
  run_bounded(loop, 3000);
  ASSERT_EQ(3, MX.step);
  ASSERT_STR_EQ(v.order, "connection drop(blocked) drop(max)");
  ASSERT_EQ(1, v.conns);
  ASSERT_EQ(1, cnet_server_blocked(srv));
  ASSERT(MX.b.closed);
  ASSERT(MX.c.closed);
  cnet_server_free(srv);
  cnet_block_list_free(bl);
  loop_finish(loop);
}

/* ---- rules added while listening -------------------------------------------
 */

static cnet_block_list_t *late_bl;
static cli_t late_second;
static int late_port;

static void block_then_connect_again(cnet_socket_t *s, const cnet_event_t *ev,
                                     void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_block_list_add_address(late_bl, "127.0.0.1", 4));
  client(cnet_socket_loop(s), &late_second, late_port, "127.0.0.1", NULL);
}

/* The list is the caller's and is consulted per connection: a rule added
 * while the server listens turns away the next peer. */
TEST_CASE(sbl06_rules_added_while_listening_apply) {
  uv_loop_t *loop = loop_new();
  srv_t v = {0};
  cli_t first = {0};
  cnet_server_t *srv;
  cnet_socket_t *s;

  late_bl = list_of(NULL, 0);
  memset(&late_second, 0, sizeof(late_second));
  srv = start(loop, &v, late_bl, "127.0.0.1", 0);
  late_port = server_port(srv);
  s = client(loop, &first, late_port, "127.0.0.1", NULL);
  ASSERT_EQ(0,
            cnet_socket_on(s, CNET_EV_CLOSE, block_then_connect_again, NULL));
  run_bounded(loop, 3000);
  ASSERT_EQ(2, first.data);
  ASSERT_STR_EQ(v.order, "connection drop(blocked)");
  ASSERT(late_second.closed);
  ASSERT_EQ(0, late_second.data);
  ASSERT_EQ(1, cnet_server_blocked(srv));
  cnet_server_free(srv);
  cnet_block_list_free(late_bl);
  loop_finish(loop);
}

/* IPC peers have no IP address: a list that blocks every IPv4 and IPv6
 * address turns none of them away. */
TEST_CASE(sbl07_ipc_server_ignores_the_block_list) {
  uv_loop_t *loop = loop_new();
  srv_t v = {0};
  cli_t c = {0};
  const char *path = temp_socket_path();
  cnet_block_list_t *bl = list_of(NULL, 0);
  cnet_server_options_t o = {.block_list = bl};
  cnet_server_t *srv;
  cnet_socket_t *s;

  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "0.0.0.0", 0, 4));
  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "::", 0, 6));
  srv = cnet_create_server(loop, &o, on_connection, &v);
  ASSERT_NOT_NULL(srv);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_DROP, on_drop, &v));
  cnet_server_unref(srv);
  ASSERT_EQ(0, cnet_server_listen_path(srv, path, 0, NULL, NULL));
  s = cnet_socket_new(loop, NULL);
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_DATA, cli_event, &c));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, cli_event, &c));
  ASSERT_EQ(0, cnet_socket_connect_path(s, path, NULL, NULL));
  run_bounded(loop, 3000);
  ASSERT_EQ(1, v.conns);
  ASSERT_EQ(0, v.drops);
  ASSERT_EQ(0, cnet_server_blocked(srv));
  ASSERT_EQ(2, c.data);
  cnet_socket_free(s);
  cnet_server_free(srv);
  cnet_block_list_free(bl);
  loop_finish(loop);
}

/* Without a block_list nothing is blocked and the counter stays 0; a list
 * that matches nothing is the same. */
TEST_CASE(sbl08_no_list_or_no_match_blocks_nothing) {
  uv_loop_t *loop = loop_new();
  srv_t v = {0}, w = {0};
  cli_t a = {0}, b = {0};
  cnet_block_list_t *bl = list_of("10.1.2.3", 4);
  cnet_server_t *plain = start(loop, &v, NULL, "127.0.0.1", 0);
  cnet_server_t *listed = start(loop, &w, bl, "127.0.0.1", 0);

  client(loop, &a, server_port(plain), "127.0.0.1", NULL);
  client(loop, &b, server_port(listed), "127.0.0.1", NULL);
  run_bounded(loop, 3000);
  ASSERT_EQ(1, v.conns);
  ASSERT_EQ(1, w.conns);
  ASSERT_EQ(0, v.drops + w.drops);
  ASSERT_EQ(0, cnet_server_blocked(plain));
  ASSERT_EQ(0, cnet_server_blocked(listed));
  ASSERT_EQ(2, a.data);
  ASSERT_EQ(2, b.data);
  cnet_server_free(plain);
  cnet_server_free(listed);
  cnet_block_list_free(bl);
  loop_finish(loop);
}

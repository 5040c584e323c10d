/* Family autoselection ("happy eyeballs"): Node v20's sequential mode
 * (CNET_AUTO_SELECT_ON), cnet's RFC 8305 mode (CNET_AUTO_SELECT_PARALLEL),
 * the attempt events and attempted addresses, aggregate errors, the
 * process defaults, and block_list with several addresses
 * (NODE-NET-BEHAVIOURS 1.15 HE-*, 1.24 MS-02, 1.11 CN-17, 3).
 *
 * Addresses come from an injected resolver (the `lookup` option), as in
 * Node's own tests. Loopback has a whole /8, so most cases need no IPv6: a
 * server on 127.0.0.1:P, nothing on 127.0.0.3:P (refused at once), and a
 * "black hole" on 127.0.0.2:P (a full accept queue: the SYN is dropped and
 * the connect hangs). Cases that need ::1 skip without it.
 *
 * Checked against Node v20.20.2 (same resolver answers, same loopback):
 *   two addresses, first refused: lookup(::1,6) lookup(127.0.0.1,4)
 *     connectionAttempt(::1) connectionAttemptFailed(::1) connectionAttempt
 *     (127.0.0.1) connect ready; attempted [::1:P, 127.0.0.1:P]
 *   [::1, ::ffff:127.0.0.2, 127.0.0.1, 127.0.0.3, ::1, foo, 127.0.0.4/100]
 *     are tried as ::1, 127.0.0.1, ::ffff:127.0.0.2, 127.0.0.3 (one
 *     'lookup' per answer, seven)
 *   [127.0.0.1, 127.0.0.1, bar]: a plain single connect, plain error,
 *     attempted undefined
 *   black hole then server, timeout 50: connectionAttempt(bh)
 *     connectionAttemptTimeout(bh) @50 ms connectionAttempt(127.0.0.1)
 *     connect
 *   black hole then refused: AggregateError code ETIMEDOUT, errors
 *     "connect ETIMEDOUT 127.0.0.2:P", "connect ECONNREFUSED 127.0.0.3:P"
 *   setDefaultAutoSelectFamilyAttemptTimeout(0): "The value of \"value\" is
 *     out of range. It must be >= 1 && <= 2147483647. Received 0"; 5 reads
 *     back as 10
 * cnet differs on purpose: the aggregate message names every attempt
 * ("connect ECONNREFUSED ::1:80; connect ECONNREFUSED 127.0.0.1:80") where
 * Node's is empty; block_list is Node v22.13's.
 *
 * No case for:
 *   HE-09  ERR_SOCKET_CONNECTION_TIMEOUT: unreachable in v20.20 -- an
 *          attempt timeout records an ETIMEDOUT error (see above), so
 *          "every attempt timed out and none produced an error" cannot
 *          happen; cnet's connect_timeout covers a connect that never ends.
 *   HE-11's type checks (autoSelectFamily must be a boolean) -- the C
 *          option is an enum; an out-of-range enum value is tested.
 *   HE-12's command-line flags -- no command line; the process default
 *          setter is tested.
 *   MS-02's non-boolean argument check -- C's bool.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "connect-harness.h"

/* ---- autoselect helpers ------------------------------------------------ */

/* Only the events a parallel race fixes: which attempts started, and the
 * outcome. (Whether a loser closed by the winner reports
 * 'connectionAttemptFailed', or a started-next attempt
 * 'connectionAttemptTimeout', is not part of the contract.) */
#define EV_RACE                                                                \
  (EVB(CNET_EV_CONNECTION_ATTEMPT) | EVB(CNET_EV_CONNECT) |                    \
   EVB(CNET_EV_ERROR) | EVB(CNET_EV_CLOSE))

/* A client socket connecting to "x.test":port through resolver r, with
 * the other options as in o, and cb as its 'connect' listener. */
static cnet_socket_t *connect_via(uv_loop_t *loop, resolver_t *r, int port,
                                  cnet_connect_options_t o, unsigned mask,
                                  cnet_socket_listener cb) {
  cnet_socket_t *s = watch_mask(cnet_socket_new(loop, NULL), mask);

  o.port = port;
  o.host = "x.test";
  o.lookup = fake_lookup;
  o.lookup_ctx = r;
  ASSERT_EQ(0, do_connect(s, &o, cb, NULL));
  return s;
}

/* connect_via() with autoselection in mode, the attempt timeout
 * attempt_ms, end() once connected, and every attempt checked for port. */
static cnet_socket_t *as_connect(uv_loop_t *loop, resolver_t *r, int port,
                                 cnet_auto_select_t mode, unsigned attempt_ms,
                                 unsigned mask) {
  cnet_connect_options_t o = {.auto_select_family = mode,
                              .auto_select_family_attempt_timeout = attempt_ms};

  want_port = port;
  return connect_via(loop, r, port, o, mask, end_on_connect);
}

/* The scene of the attempt timeout cases: a server on 127.0.0.1, a black
 * hole on 127.0.0.2 at the same port, and a resolver that answers the
 * hole first. */
typedef struct {
  uv_loop_t *loop;
  server_t sv;
  hole_t h;
  resolver_t r;
} hole_first_t;

/* A new loop, reset(), and the scene. */
static void hole_first_open(hole_first_t *f) {
  f->loop = loop_new();
  reset();
  memset(&f->sv, 0, sizeof(f->sv));
  server_start(&f->sv, f->loop, "127.0.0.1", 0);
  hole_open(&f->h, "127.0.0.2", f->sv.port);
  resolver_set(&f->r, 2, "127.0.0.2", 4, "127.0.0.1", 4);
}

/* as_connect() to the scene's port through its resolver. */
static cnet_socket_t *hole_first_connect(hole_first_t *f,
                                         cnet_auto_select_t mode,
                                         unsigned attempt_ms, unsigned mask) {
  return as_connect(f->loop, &f->r, f->sv.port, mode, attempt_ms, mask);
}

/* Frees the client s and the scene; the loop must end clean. */
static void hole_first_close(hole_first_t *f, cnet_socket_t *s) {
  cnet_socket_free(s);
  cnet_server_free(f->sv.srv);
  hole_close(&f->h);
  loop_finish(f->loop);
}

/* ======================================================================== */
/* HE-01, HE-11, HE-12, MS-02: the process defaults                          */

/* HE-01 + MS-02: autoselection is on by default; the setter turns it off
 * and on again. */
TEST_CASE(he01_default_on_and_ms02_setter_round_trip) {
  ASSERT(cnet_get_default_auto_select_family());
  cnet_set_default_auto_select_family(false);
  ASSERT(!cnet_get_default_auto_select_family());
  cnet_set_default_auto_select_family(true);
  ASSERT(cnet_get_default_auto_select_family());
}

/* HE-11/HE-12 + MS-02: the default attempt timeout is 250 ms (v20); the
 * setter refuses 0 and 2^31 with Node's messages and leaves the value
 * alone; 1..9 read back as 10. */
TEST_CASE(he12_default_attempt_timeout_and_ms02_setter_validation) {
  ASSERT_EQ(250, cnet_get_default_auto_select_family_attempt_timeout());
  ASSERT_EQ(CNET_ERR_OUT_OF_RANGE,
            cnet_set_default_auto_select_family_attempt_timeout(0));
  ASSERT_STR_EQ(cnet_last_error()->code, "ERR_OUT_OF_RANGE");
  ASSERT_STR_EQ(cnet_last_error()->message,
                "The value of \"value\" is out of range. It must be >= 1 && "
                "<= 2147483647. Received 0");
  ASSERT_EQ(CNET_ERR_OUT_OF_RANGE,
            cnet_set_default_auto_select_family_attempt_timeout(2147483648u));
  ASSERT_STR_EQ(cnet_last_error()->message,
                "The value of \"value\" is out of range. It must be >= 1 && "
                "<= 2147483647. Received 2147483648");
  ASSERT_EQ(250, cnet_get_default_auto_select_family_attempt_timeout());
  ASSERT_EQ(0, cnet_set_default_auto_select_family_attempt_timeout(5));
  ASSERT_EQ(10, cnet_get_default_auto_select_family_attempt_timeout());
  ASSERT_EQ(0, cnet_set_default_auto_select_family_attempt_timeout(1));
  ASSERT_EQ(10, cnet_get_default_auto_select_family_attempt_timeout());
  ASSERT_EQ(0,
            cnet_set_default_auto_select_family_attempt_timeout(2147483647u));
  ASSERT_EQ(2147483647u, cnet_get_default_auto_select_family_attempt_timeout());
  ASSERT_EQ(0, cnet_set_default_auto_select_family_attempt_timeout(1000));
  ASSERT_EQ(1000, cnet_get_default_auto_select_family_attempt_timeout());
}

/* HE-11: the connect option is checked the same way, with the option's
 * name; an unknown autoselection mode is ERR_INVALID_ARG_VALUE. Nothing is
 * emitted and the resolver is not asked. */
TEST_CASE(he11_attempt_timeout_option_out_of_range) {
  uv_loop_t *loop = loop_new();
  resolver_t r;
  cnet_socket_t *s = watch(cnet_socket_new(loop, NULL));
  cnet_connect_options_t o = {.port = 80,
                              .host = "x.test",
                              .lookup = fake_lookup,
                              .lookup_ctx = &r,
                              .auto_select_family_attempt_timeout =
                                  2147483648u};

  reset();
  resolver_set(&r, 1, "127.0.0.1", 4);
  ASSERT_EQ(CNET_ERR_OUT_OF_RANGE, do_connect(s, &o, NULL, NULL));
  ASSERT_STR_EQ(cnet_last_error()->message,
                "The value of \"options.autoSelectFamilyAttemptTimeout\" is "
                "out of range. It must be >= 1 && <= 2147483647. Received "
                "2147483648");
  ASSERT_NULL(cnet_create_connection(loop, &o, NULL, NULL));
  ASSERT_EQ(CNET_ERR_OUT_OF_RANGE, cnet_last_error()->errnum);
  o.auto_select_family_attempt_timeout = 0;
  o.auto_select_family = (cnet_auto_select_t)99;
  ASSERT_EQ(CNET_ERR_INVALID_ARG_VALUE, do_connect(s, &o, NULL, NULL));
  ASSERT_EQ(0, r.calls);
  finish_refused(loop, s);
}

/* HE-12: attempt timeout 0 in the options means the process default: set
 * to 30 ms, a black-holed first address is abandoned after about 30 ms
 * (not 250). */
TEST_CASE(he12_zero_option_uses_the_process_default) {
  hole_first_t f;
  cnet_socket_t *s;

  hole_first_open(&f);
  ASSERT_EQ(0, cnet_set_default_auto_select_family_attempt_timeout(30));
  s = hole_first_connect(&f, CNET_AUTO_SELECT_DEFAULT, 0, EV_ALL);
  run_bounded(f.loop, 3000);
  ASSERT_EQ(1, n_attempt_timeouts);
  ASSERT_GE(t_attempt_timeout[0] - t_attempt[0], 25);
  ASSERT_LT(t_attempt_timeout[0] - t_attempt[0], 200);
  ASSERT_EQ(1, f.sv.conns);
  hole_first_close(&f, s);
}

/* HE-12: and untouched, the default is 250 ms. */
TEST_CASE(he12_default_attempt_timeout_is_250ms) {
  hole_first_t f;
  cnet_socket_t *s;

  hole_first_open(&f);
  s = hole_first_connect(&f, CNET_AUTO_SELECT_ON, 0, EV_ALL);
  run_bounded(f.loop, 3000);
  ASSERT_EQ(1, n_attempt_timeouts);
  ASSERT_GE(t_attempt_timeout[0] - t_attempt[0], 240);
  ASSERT_LT(t_attempt_timeout[0] - t_attempt[0], 700);
  hole_first_close(&f, s);
}

/* HE-11: an attempt timeout of 1..9 ms is raised to 10. */
TEST_CASE(he11_attempt_timeout_below_10_is_raised_to_10) {
  hole_first_t f;
  cnet_socket_t *s;

  hole_first_open(&f);
  s = hole_first_connect(&f, CNET_AUTO_SELECT_ON, 1, EV_ALL);
  run_bounded(f.loop, 3000);
  ASSERT_EQ(1, n_attempt_timeouts);
  ASSERT_GE(t_attempt_timeout[0] - t_attempt[0], 9);
  ASSERT_EQ(1, f.sv.conns);
  hole_first_close(&f, s);
}

/* ======================================================================== */
/* HE-02, HE-13: when autoselection applies                                 */

/* HE-01 + HE-13: with the process default turned off, a connect that
 * leaves the mode at DEFAULT asks for one address and tries only the
 * first: refused on 127.0.0.3 although 127.0.0.1 would answer. */
TEST_CASE(he01_default_off_tries_only_the_first_address) {
  uv_loop_t *loop = loop_new();
  server_t sv = {0};
  resolver_t r;
  cnet_socket_t *s;

  reset();
  cnet_set_default_auto_select_family(false);
  server_start(&sv, loop, "127.0.0.1", 0);
  resolver_set(&r, 2, "127.0.0.3", 4, "127.0.0.1", 4);
  s = as_connect(loop, &r, sv.port, CNET_AUTO_SELECT_DEFAULT, 0, EV_ALL);
  ASSERT(!r.opts.all);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "lookup(127.0.0.3,4) attempt(127.0.0.3) "
                       "failed(127.0.0.3,ECONNREFUSED) error(ECONNREFUSED) "
                       "close(true)");
  ASSERT_STR_EQ(E.message, F("connect ECONNREFUSED 127.0.0.3:%d", sv.port));
  ASSERT_NULL(cnet_socket_attempted_address(s, 0));
  ASSERT_EQ(0, sv.conns);
  cnet_socket_free(s);
  cnet_server_free(sv.srv);
  loop_finish(loop);
}

/* HE-13: autoselection off and ::1 first: only ::1 is tried, refused,
 * even though an IPv4 server listens on the port. */
TEST_CASE(he13_autoselect_off_tries_only_ipv6_first) {
  uv_loop_t *loop;
  server_t sv = {0};
  resolver_t r;
  cnet_socket_t *s;

  if (!have_ipv6())
    return;
  loop = loop_new();
  reset();
  server_start(&sv, loop, "127.0.0.1", 0);
  resolver_set(&r, 2, "::1", 6, "127.0.0.1", 4);
  s = as_connect(loop, &r, sv.port, CNET_AUTO_SELECT_OFF, 0, EV_ALL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "lookup(::1,6) attempt(::1) failed(::1,ECONNREFUSED) "
                       "error(ECONNREFUSED) close(true)");
  ASSERT_STR_EQ(E.message, F("connect ECONNREFUSED ::1:%d", sv.port));
  ASSERT_EQ(0, sv.conns);
  cnet_socket_free(s);
  cnet_server_free(sv.srv);
  loop_finish(loop);
}

/* HE-02: autoselection needs family 0 and no local_address. With family 4
 * or a local_address the resolver is asked for one address (all false)
 * and, even if it answers two, only the first is tried. */
TEST_CASE(he02_family_or_local_address_turn_autoselection_off) {
  uv_loop_t *loop = loop_new();
  server_t sv = {0};
  resolver_t r;
  cnet_socket_t *s = watch(cnet_socket_new(loop, NULL));
  cnet_connect_options_t o = {.host = "x.test",
                              .lookup = fake_lookup,
                              .lookup_ctx = &r,
                              .auto_select_family = CNET_AUTO_SELECT_ON};

  server_start(&sv, loop, "127.0.0.1", 0);
  o.port = sv.port;

  reset();
  resolver_set(&r, 2, "127.0.0.3", 4, "127.0.0.1", 4);
  o.family = 4;
  ASSERT_EQ(0, do_connect(s, &o, NULL, NULL));
  ASSERT(!r.opts.all);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(E.message, F("connect ECONNREFUSED 127.0.0.3:%d", sv.port));
  ASSERT_NULL(cnet_socket_attempted_address(s, 0));

  reset();
  resolver_set(&r, 2, "127.0.0.3", 4, "127.0.0.1", 4);
  o.family = 0;
  o.local_address = "127.0.0.1";
  ASSERT_EQ(0, do_connect(s, &o, NULL, NULL));
  ASSERT(!r.opts.all);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(E.message, F("connect ECONNREFUSED 127.0.0.3:%d", sv.port));
  ASSERT_NULL(cnet_socket_attempted_address(s, 0));

  /* local_port alone does not turn it off (Node binds 0.0.0.0:port per
   * attempt). */
  reset();
  resolver_set(&r, 2, "127.0.0.3", 4, "127.0.0.1", 4);
  o.local_address = NULL;
  o.local_port = closed_port();
  ASSERT_EQ(0, do_connect(s, &o, end_on_connect, NULL));
  ASSERT(r.opts.all);
  run_bounded(loop, 3000);
  ASSERT_EQ(0, n_errors);
  ASSERT_EQ(1, sv.conns);
  ASSERT_EQ(o.local_port, sv.last_remote_port);
  cnet_socket_free(s);
  cnet_server_free(sv.srv);
  loop_finish(loop);
}

/* ======================================================================== */
/* HE-03 .. HE-05: which addresses, in which order                          */

/* HE-03 + DN-02: one 'lookup' per answer (seven, the unusable ones too);
 * then the usable ones are split by family, the family of the first answer
 * goes first, and the families alternate; a duplicate IP is tried once; a
 * non-IP and a family-100 answer are skipped. All are refused here: the
 * attempted addresses and the attempt events show the order. (Without an
 * IPv6 loopback the IPv6 attempts fail another way; the order is the
 * same.) */
TEST_CASE(he03_order_alternates_families_dedups_skips_invalid) {
  uv_loop_t *loop = loop_new();
  resolver_t r;
  int port = closed_port();
  cnet_socket_t *s;
  const char *order[] = {"::1", "127.0.0.1", "::ffff:127.0.0.2", "127.0.0.3"};

  reset();
  resolver_set(&r, 7, "::1", 6, "::ffff:127.0.0.2", 6, "127.0.0.1", 4,
               "127.0.0.3", 4, "::1", 6, "foo", 4, "127.0.0.4", 100);
  s = as_connect(loop, &r, port, CNET_AUTO_SELECT_ON, 5000,
                 EVB(CNET_EV_LOOKUP) | EVB(CNET_EV_CONNECTION_ATTEMPT) |
                     EVB(CNET_EV_ERROR) | EVB(CNET_EV_CLOSE));
  ASSERT(r.opts.all);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(
      T.buf, "lookup(::1,6) lookup(::ffff:127.0.0.2,6) lookup(127.0.0.1,4) "
             "lookup(127.0.0.3,4) lookup(::1,6) lookup(foo,4) "
             "lookup(127.0.0.4,100) attempt(::1) attempt(127.0.0.1) "
             "attempt(::ffff:127.0.0.2) attempt(127.0.0.3) error(ECONNREFUSED)"
             " close(true)");
  for (size_t i = 0; i < ARRAY_LEN(order); i++) {
    const cnet_error_t *ae = cnet_socket_attempt_error(s, i);
    ASSERT_STR_EQ(cnet_socket_attempted_address(s, i),
                  F("%s:%d", order[i], port));
    ASSERT_NOT_NULL(ae);
    if (have_ipv6() || strchr(order[i], ':') == NULL)
      ASSERT_STR_EQ(ae->message,
                    F("connect ECONNREFUSED %s:%d", order[i], port));
  }
  ASSERT_NULL(cnet_socket_attempted_address(s, 4));
  ASSERT_NULL(cnet_socket_attempt_error(s, 4));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* HE-03: when the first answer is IPv4, IPv4 goes first. */
TEST_CASE(he03_ipv4_first_when_the_first_answer_is_ipv4) {
  uv_loop_t *loop = loop_new();
  resolver_t r;
  int port = closed_port();
  cnet_socket_t *s;

  reset();
  resolver_set(&r, 3, "127.0.0.1", 4, "::1", 6, "127.0.0.3", 4);
  s = as_connect(loop, &r, port, CNET_AUTO_SELECT_ON, 5000,
                 EVB(CNET_EV_CONNECTION_ATTEMPT) | EVB(CNET_EV_ERROR) |
                     EVB(CNET_EV_CLOSE));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "attempt(127.0.0.1) attempt(::1) attempt(127.0.0.3) "
                       "error(ECONNREFUSED) close(true)");
  ASSERT_STR_EQ(cnet_socket_attempted_address(s, 1), F("::1:%d", port));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* HE-04: when one usable address remains (a duplicate and a non-IP
 * dropped), it is a plain single connect: no attempted addresses, and a
 * plain error, not an aggregate. */
TEST_CASE(he04_one_usable_address_is_a_plain_connect) {
  uv_loop_t *loop = loop_new();
  resolver_t r;
  int port = closed_port();
  cnet_socket_t *s;

  reset();
  resolver_set(&r, 3, "127.0.0.1", 4, "127.0.0.1", 4, "bar", 4);
  s = as_connect(loop, &r, port, CNET_AUTO_SELECT_ON, 0, EV_ALL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "lookup(127.0.0.1,4) lookup(127.0.0.1,4) lookup(bar,4) "
                       "attempt(127.0.0.1) failed(127.0.0.1,ECONNREFUSED) "
                       "error(ECONNREFUSED) close(true)");
  ASSERT_STR_EQ(E.message, F("connect ECONNREFUSED 127.0.0.1:%d", port));
  ASSERT_STR_EQ(E.syscall, "connect");
  ASSERT_EQ(port, E.port);
  ASSERT_NULL(cnet_socket_attempted_address(s, 0));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* HE-05 + HE-07: attempted addresses are "ip:port" in attempt order, the
 * last one the peer after success; the refused first attempt moves on at
 * once (the 5 s attempt timeout is never waited for); attempt 0 has its
 * error, attempt 1 (the winner) none. A later connect() starts the list
 * over (an IP literal: no list at all). */
TEST_CASE(he05_attempted_addresses_and_he07_failure_moves_on_at_once) {
  uv_loop_t *loop = loop_new();
  server_t sv = {0};
  resolver_t r;
  cnet_socket_t *s;
  cnet_address_t ra;

  reset();
  server_start(&sv, loop, "127.0.0.1", 0);
  resolver_set(&r, 2, "127.0.0.3", 4, "127.0.0.1", 4);
  s = as_connect(loop, &r, sv.port, CNET_AUTO_SELECT_ON, 5000, EV_ALL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "lookup(127.0.0.3,4) lookup(127.0.0.1,4) "
                       "attempt(127.0.0.3) failed(127.0.0.3,ECONNREFUSED) "
                       "attempt(127.0.0.1) connect ready finish end "
                       "close(false)");
  ASSERT_LT(t_connect - t_start, 1000);
  ASSERT_STR_EQ(cnet_socket_attempted_address(s, 0),
                F("127.0.0.3:%d", sv.port));
  ASSERT_STR_EQ(cnet_socket_attempted_address(s, 1),
                F("127.0.0.1:%d", sv.port));
  ASSERT_NULL(cnet_socket_attempted_address(s, 2));
  ASSERT_NOT_NULL(cnet_socket_attempt_error(s, 0));
  ASSERT_STR_EQ(cnet_socket_attempt_error(s, 0)->message,
                F("connect ECONNREFUSED 127.0.0.3:%d", sv.port));
  ASSERT_NULL(cnet_socket_attempt_error(s, 1));
  ASSERT_EQ(0, cnet_socket_remote_address(s, &ra));
  ASSERT_STR_EQ(ra.address, "127.0.0.1");
  ASSERT_EQ(1, sv.conns);

  reset();
  ASSERT_EQ(0, cnet_socket_connect_port(s, sv.port, "127.0.0.1", end_on_connect,
                                        NULL));
  ASSERT_NULL(cnet_socket_attempted_address(s, 0));
  run_bounded(loop, 3000);
  ASSERT_NULL(cnet_socket_attempted_address(s, 0));
  ASSERT_NULL(cnet_socket_attempt_error(s, 0));
  cnet_socket_free(s);
  cnet_server_free(sv.srv);
  loop_finish(loop);
}

/* HE-07 in Node's own shape: ::1 refused (only IPv4 listens), then
 * 127.0.0.1 connects. */
TEST_CASE(he07_ipv6_refused_then_ipv4_connects) {
  uv_loop_t *loop;
  server_t sv = {0};
  resolver_t r;
  cnet_socket_t *s;

  if (!have_ipv6())
    return;
  loop = loop_new();
  reset();
  server_start(&sv, loop, "127.0.0.1", 0);
  resolver_set(&r, 2, "::1", 6, "127.0.0.1", 4);
  s = as_connect(loop, &r, sv.port, CNET_AUTO_SELECT_DEFAULT, 0, EV_ALL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "lookup(::1,6) lookup(127.0.0.1,4) attempt(::1) "
                       "failed(::1,ECONNREFUSED) attempt(127.0.0.1) connect "
                       "ready finish end close(false)");
  ASSERT_STR_EQ(cnet_socket_attempted_address(s, 0), F("::1:%d", sv.port));
  ASSERT_STR_EQ(cnet_socket_attempted_address(s, 1),
                F("127.0.0.1:%d", sv.port));
  cnet_socket_free(s);
  cnet_server_free(sv.srv);
  loop_finish(loop);
}

/* ======================================================================== */
/* HE-06: the attempt timeout (sequential mode)                             */

/* HE-06: a black-holed first address is abandoned after the attempt
 * timeout ('connectionAttemptTimeout'), and closed: when the next attempt
 * starts, no SYN towards it is outstanding any more. The next one wins;
 * the server sees exactly one connection. */
TEST_CASE(he06_attempt_timeout_abandons_and_moves_on) {
  hole_first_t f;
  cnet_socket_t *s;
  cnet_address_t ra;

  hole_first_open(&f);
  s = hole_first_connect(&f, CNET_AUTO_SELECT_ON, 50, EV_ALL);
  run_bounded(f.loop, 3000);
  ASSERT_STR_EQ(T.buf, "lookup(127.0.0.2,4) lookup(127.0.0.1,4) "
                       "attempt(127.0.0.2) attempt_timeout(127.0.0.2) "
                       "attempt(127.0.0.1) connect ready finish end "
                       "close(false)");
  ASSERT_GE(t_attempt_timeout[0] - t_attempt[0], 45);
  ASSERT_LT(t_attempt_timeout[0] - t_attempt[0], 500);
  ASSERT_EQ(0, tcp_count("127.0.0.2", f.sv.port, TCP_SYN_SENT_STATE));
  ASSERT_STR_EQ(cnet_socket_attempted_address(s, 0),
                F("127.0.0.2:%d", f.sv.port));
  ASSERT_STR_EQ(cnet_socket_attempted_address(s, 1),
                F("127.0.0.1:%d", f.sv.port));
  ASSERT_EQ(0, cnet_socket_remote_address(s, &ra));
  ASSERT_STR_EQ(ra.address, "127.0.0.1");
  ASSERT_EQ(1, f.sv.conns);
  hole_first_close(&f, s);
}

static int syn_sent_at_second_attempt;
static int second_attempt_port;

static void count_syn_at_second(cnet_socket_t *s, const cnet_event_t *ev,
                                void *ctx) {
  (void)s;
  (void)ctx;
  if (strcmp(ev->attempt.address, "127.0.0.1") == 0)
    syn_sent_at_second_attempt =
        tcp_count("127.0.0.2", second_attempt_port, TCP_SYN_SENT_STATE);
}

/* HE-06: sequential means not parallel: when the second attempt starts,
 * the first (black-holed) one is already closed. */
TEST_CASE(he06_sequential_attempts_do_not_overlap) {
  hole_first_t f;
  cnet_socket_t *s;

  hole_first_open(&f);
  second_attempt_port = f.sv.port;
  syn_sent_at_second_attempt = -1;
  s = hole_first_connect(&f, CNET_AUTO_SELECT_ON, 50, EV_RACE);
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CONNECTION_ATTEMPT,
                              count_syn_at_second, NULL));
  run_bounded(f.loop, 3000);
  ASSERT_EQ(0, syn_sent_at_second_attempt);
  ASSERT_EQ(1, f.sv.conns);
  hole_first_close(&f, s);
}

/* ======================================================================== */
/* HE-08: every attempt failed                                              */

/* HE-08: all refused: one 'error' with the first attempt's code and (cnet,
 * unlike Node's empty message) a message naming every attempt in order,
 * then 'close'(true); cnet_socket_attempt_error(i) gives each attempt's own
 * error. */
TEST_CASE(he08_all_refused_aggregate_names_every_attempt) {
  uv_loop_t *loop = loop_new();
  resolver_t r;
  int port = closed_port();
  cnet_socket_t *s;

  reset();
  resolver_set(&r, 2, "127.0.0.3", 4, "127.0.0.1", 4);
  s = as_connect(loop, &r, port, CNET_AUTO_SELECT_ON, 0, EV_ALL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "lookup(127.0.0.3,4) lookup(127.0.0.1,4) "
                       "attempt(127.0.0.3) failed(127.0.0.3,ECONNREFUSED) "
                       "attempt(127.0.0.1) failed(127.0.0.1,ECONNREFUSED) "
                       "error(ECONNREFUSED) close(true)");
  ASSERT_EQ(1, n_errors);
  ASSERT_STR_EQ(E.code, "ECONNREFUSED");
  ASSERT_STR_EQ(E.message, F("connect ECONNREFUSED 127.0.0.3:%d; "
                             "connect ECONNREFUSED 127.0.0.1:%d",
                             port, port));
  ASSERT_STR_EQ(cnet_socket_attempt_error(s, 0)->message,
                F("connect ECONNREFUSED 127.0.0.3:%d", port));
  ASSERT_STR_EQ(cnet_socket_attempt_error(s, 0)->address, "127.0.0.3");
  ASSERT_EQ(port, cnet_socket_attempt_error(s, 0)->port);
  ASSERT_STR_EQ(cnet_socket_attempt_error(s, 0)->syscall, "connect");
  ASSERT_EQ(UV_ECONNREFUSED, cnet_socket_attempt_error(s, 1)->errnum);
  ASSERT_STR_EQ(cnet_socket_attempt_error(s, 1)->message,
                F("connect ECONNREFUSED 127.0.0.1:%d", port));
  ASSERT_NULL(cnet_socket_attempt_error(s, 2));
  ASSERT(cnet_socket_destroyed(s));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* HE-08 with the header's own example: ::1 and 127.0.0.1 both refused. */
TEST_CASE(he08_ipv6_and_ipv4_refused_aggregate_message) {
  uv_loop_t *loop;
  resolver_t r;
  int port = closed_port();
  cnet_socket_t *s;

  if (!have_ipv6())
    return;
  loop = loop_new();
  reset();
  resolver_set(&r, 2, "::1", 6, "127.0.0.1", 4);
  s = as_connect(loop, &r, port, CNET_AUTO_SELECT_DEFAULT, 0, EV_BASIC);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(E.code, "ECONNREFUSED");
  ASSERT_STR_EQ(E.message, F("connect ECONNREFUSED ::1:%d; "
                             "connect ECONNREFUSED 127.0.0.1:%d",
                             port, port));
  ASSERT_STR_EQ(cnet_socket_attempt_error(s, 0)->message,
                F("connect ECONNREFUSED ::1:%d", port));
  ASSERT(close_had_error);
  cnet_socket_free(s);
  loop_finish(loop);
}

/* HE-08: an attempt abandoned by the attempt timeout counts as an
 * ETIMEDOUT error (as in Node v20.20), so black hole then refused gives an
 * aggregate whose code is the first attempt's: ETIMEDOUT. */
TEST_CASE(he08_timed_out_then_refused_aggregate) {
  uv_loop_t *loop = loop_new();
  hole_t h;
  resolver_t r;
  cnet_socket_t *s;

  reset();
  hole_open(&h, "127.0.0.2", 0);
  resolver_set(&r, 2, "127.0.0.2", 4, "127.0.0.3", 4);
  s = as_connect(loop, &r, h.port, CNET_AUTO_SELECT_ON, 50, EV_ALL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "lookup(127.0.0.2,4) lookup(127.0.0.3,4) "
                       "attempt(127.0.0.2) attempt_timeout(127.0.0.2) "
                       "attempt(127.0.0.3) failed(127.0.0.3,ECONNREFUSED) "
                       "error(ETIMEDOUT) close(true)");
  ASSERT_STR_EQ(E.code, "ETIMEDOUT");
  ASSERT_STR_EQ(E.message, F("connect ETIMEDOUT 127.0.0.2:%d; "
                             "connect ECONNREFUSED 127.0.0.3:%d",
                             h.port, h.port));
  ASSERT_STR_EQ(cnet_socket_attempt_error(s, 0)->code, "ETIMEDOUT");
  ASSERT_STR_EQ(cnet_socket_attempt_error(s, 0)->message,
                F("connect ETIMEDOUT 127.0.0.2:%d", h.port));
  ASSERT_STR_EQ(cnet_socket_attempt_error(s, 1)->code, "ECONNREFUSED");
  cnet_socket_free(s);
  hole_close(&h);
  loop_finish(loop);
}

/* ======================================================================== */
/* HE-10: destroy while attempting                                          */

/* HE-10: destroy() during the first attempt (black hole) stops everything:
 * no further attempt, no SYN left outstanding, 'close'(false), and the
 * server behind the later addresses never sees a connection. */
TEST_CASE(he10_destroy_during_an_attempt_stops_the_rest) {
  hole_first_t f;
  cnet_socket_t *s;

  hole_first_open(&f);
  s = hole_first_connect(&f, CNET_AUTO_SELECT_ON, 100, EV_ALL);
  destroy_after_attempt(s, 1, 30);
  linger(f.loop, 300);
  run_bounded(f.loop, 3000);
  ASSERT_STR_EQ(T.buf, "lookup(127.0.0.2,4) lookup(127.0.0.1,4) "
                       "attempt(127.0.0.2) close(false)");
  ASSERT_EQ(0, tcp_count("127.0.0.2", f.sv.port, TCP_SYN_SENT_STATE));
  ASSERT_EQ(0, f.sv.conns);
  hole_first_close(&f, s);
}

/* HE-10: destroy() from inside 'connectionAttemptFailed' (the first
 * address refused) starts no next attempt. */
TEST_CASE(he10_destroy_in_attempt_failed_listener) {
  uv_loop_t *loop = loop_new();
  server_t sv = {0};
  resolver_t r;
  cnet_socket_t *s;

  reset();
  server_start(&sv, loop, "127.0.0.1", 0);
  resolver_set(&r, 2, "127.0.0.3", 4, "127.0.0.1", 4);
  s = as_connect(loop, &r, sv.port, CNET_AUTO_SELECT_ON, 0, EV_ALL);
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CONNECTION_ATTEMPT_FAILED, destroy_now,
                              NULL));
  linger(loop, 100);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "lookup(127.0.0.3,4) lookup(127.0.0.1,4) "
                       "attempt(127.0.0.3) failed(127.0.0.3,ECONNREFUSED) "
                       "close(false)");
  ASSERT_EQ(0, sv.conns);
  cnet_socket_free(s);
  cnet_server_free(sv.srv);
  loop_finish(loop);
}

/* ======================================================================== */
/* HE-14: the first success ends it                                         */

/* HE-14: when the first address connects, the second is never contacted:
 * two servers on the same port, only the first sees a connection (checked
 * after the attempt timeout has long passed). */
TEST_CASE(he14_first_success_never_contacts_the_second) {
  uv_loop_t *loop = loop_new();
  server_t a = {0}, b = {0};
  resolver_t r;
  cnet_socket_t *s;

  reset();
  server_start(&a, loop, "127.0.0.1", 0);
  server_start(&b, loop, "127.0.0.2", a.port);
  resolver_set(&r, 2, "127.0.0.1", 4, "127.0.0.2", 4);
  s = as_connect(loop, &r, a.port, CNET_AUTO_SELECT_ON, 10, EV_ALL);
  linger(loop, 150);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "lookup(127.0.0.1,4) lookup(127.0.0.2,4) "
                       "attempt(127.0.0.1) connect ready finish end "
                       "close(false)");
  ASSERT_EQ(1, a.conns);
  ASSERT_EQ(0, b.conns);
  ASSERT_STR_EQ(cnet_socket_attempted_address(s, 0), F("127.0.0.1:%d", a.port));
  ASSERT_NULL(cnet_socket_attempted_address(s, 1));
  cnet_socket_free(s);
  cnet_server_free(a.srv);
  cnet_server_free(b.srv);
  loop_finish(loop);
}

/* HE-14 with families: IPv6 first succeeds, the IPv4 server on the same
 * port sees nothing. */
TEST_CASE(he14_ipv6_success_never_contacts_ipv4) {
  uv_loop_t *loop;
  server_t v6 = {0}, v4 = {0};
  resolver_t r;
  cnet_socket_t *s;

  if (!have_ipv6())
    return;
  loop = loop_new();
  reset();
  server_start(&v6, loop, "::1", 0);
  server_start(&v4, loop, "127.0.0.1", v6.port);
  resolver_set(&r, 2, "::1", 6, "127.0.0.1", 4);
  s = as_connect(loop, &r, v6.port, CNET_AUTO_SELECT_DEFAULT, 10, EV_BASIC);
  linger(loop, 150);
  run_bounded(loop, 3000);
  ASSERT_EQ(0, n_errors);
  ASSERT_EQ(1, v6.conns);
  ASSERT_EQ(0, v4.conns);
  cnet_socket_free(s);
  cnet_server_free(v6.srv);
  cnet_server_free(v4.srv);
  loop_finish(loop);
}

/* ======================================================================== */
/* CNET_AUTO_SELECT_PARALLEL (RFC 8305, beyond Node)                        */

static int par_port;
static int par_syn_at_second = -1;

static void par_count_syn(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ctx;
  if (strcmp(ev->attempt.address, "127.0.0.1") == 0)
    par_syn_at_second = tcp_count("127.0.0.2", par_port, TCP_SYN_SENT_STATE);
}

/* Parallel: a black-holed first address does not stop the second from
 * winning; the attempts overlap (when the second starts, the first's SYN
 * is still outstanding: compare he06_sequential_attempts_do_not_overlap);
 * the second starts one attempt timeout after the first; once it wins the
 * loser is closed (no SYN towards the hole any more) and the server sees
 * the winner only. */
TEST_CASE(parallel_black_holed_first_does_not_block_the_second) {
  hole_first_t f;
  cnet_socket_t *s;
  cnet_address_t ra;

  hole_first_open(&f);
  par_port = f.sv.port;
  par_syn_at_second = -1;
  s = hole_first_connect(&f, CNET_AUTO_SELECT_PARALLEL, 50, EV_RACE);
  ASSERT(f.r.opts.all);
  ASSERT_EQ(0,
            cnet_socket_on(s, CNET_EV_CONNECTION_ATTEMPT, par_count_syn, NULL));
  run_bounded(f.loop, 3000);
  ASSERT_STR_EQ(T.buf, "attempt(127.0.0.2) attempt(127.0.0.1) connect "
                       "close(false)");
  ASSERT_EQ(1, par_syn_at_second);
  ASSERT_GE(t_attempt[1] - t_attempt[0], 45);
  ASSERT_LT(t_attempt[1] - t_attempt[0], 500);
  ASSERT_EQ(0, tcp_count("127.0.0.2", f.sv.port, TCP_SYN_SENT_STATE));
  ASSERT_EQ(0, cnet_socket_remote_address(s, &ra));
  ASSERT_STR_EQ(ra.address, "127.0.0.1");
  ASSERT_STR_EQ(cnet_socket_attempted_address(s, 0),
                F("127.0.0.2:%d", f.sv.port));
  ASSERT_STR_EQ(cnet_socket_attempted_address(s, 1),
                F("127.0.0.1:%d", f.sv.port));
  ASSERT_EQ(1, f.sv.conns);
  hole_first_close(&f, s);
}

/* Parallel, what sequential mode cannot do: the first address is slow
 * (its SYN is dropped once; the hole makes room at 100 ms, so the SYN the
 * kernel retransmits after about 1 s gets through) and the second is dead.
 * Parallel keeps the first attempt running, and it wins after about a
 * second; the dead one is then closed. */
TEST_CASE(parallel_slow_first_address_still_wins) {
  uv_loop_t *loop = loop_new();
  hole_t slow, dead;
  resolver_t r;
  cnet_socket_t *s;
  cnet_address_t ra;

  reset();
  hole_open(&slow, "127.0.0.2", 0);
  hole_open(&dead, "127.0.0.3", slow.port);
  later(loop, 100, hole_drain_cb, &slow, true);
  resolver_set(&r, 2, "127.0.0.2", 4, "127.0.0.3", 4);
  {
    cnet_connect_options_t o = {.auto_select_family = CNET_AUTO_SELECT_PARALLEL,
                                .auto_select_family_attempt_timeout = 50,
                                .connect_timeout = 4000};

    /* The hole never reads nor closes: destroy rather than end. */
    s = connect_via(loop, &r, slow.port, o, EV_RACE, destroy_now);
  }
  run_bounded(loop, 6000);
  ASSERT_STR_EQ(T.buf, "attempt(127.0.0.2) attempt(127.0.0.3) connect "
                       "close(false)");
  ASSERT_GE(t_connect - t_start, 500);
  ASSERT_LT(t_connect - t_start, 3500);
  ASSERT_EQ(0, cnet_socket_remote_address(s, &ra));
  ASSERT_STR_EQ(ra.address, "127.0.0.2");
  ASSERT_EQ(0, tcp_count("127.0.0.3", slow.port, TCP_SYN_SENT_STATE));
  cnet_socket_free(s);
  hole_close(&slow);
  hole_close(&dead);
  loop_finish(loop);
}

/* The same addresses in Node's sequential mode: the slow first attempt is
 * abandoned at 50 ms, the dead second one hangs, and only connect_timeout
 * ends it (ETIMEDOUT). This is the failure parallel mode exists for. */
TEST_CASE(parallel_contrast_sequential_loses_the_slow_first_address) {
  uv_loop_t *loop = loop_new();
  hole_t slow, dead;
  resolver_t r;
  cnet_socket_t *s;

  reset();
  hole_open(&slow, "127.0.0.2", 0);
  hole_open(&dead, "127.0.0.3", slow.port);
  later(loop, 100, hole_drain_cb, &slow, true);
  resolver_set(&r, 2, "127.0.0.2", 4, "127.0.0.3", 4);
  {
    cnet_connect_options_t o = {.auto_select_family = CNET_AUTO_SELECT_ON,
                                .auto_select_family_attempt_timeout = 50,
                                .connect_timeout = 1500};

    s = connect_via(loop, &r, slow.port, o, EV_RACE, end_on_connect);
  }
  run_bounded(loop, 6000);
  ASSERT_STR_EQ(T.buf, "attempt(127.0.0.2) attempt(127.0.0.3) "
                       "error(ETIMEDOUT) close(true)");
  ASSERT_GE(t_error - t_start, 1400);
  ASSERT_EQ(0, tcp_count("127.0.0.3", slow.port, TCP_SYN_SENT_STATE));
  cnet_socket_free(s);
  hole_close(&slow);
  hole_close(&dead);
  loop_finish(loop);
}

/* Parallel, HE-07's rule: a refused attempt starts the next one at once,
 * without waiting for the attempt timeout. */
TEST_CASE(parallel_refused_attempt_starts_the_next_at_once) {
  uv_loop_t *loop = loop_new();
  server_t sv = {0};
  resolver_t r;
  cnet_socket_t *s;

  reset();
  server_start(&sv, loop, "127.0.0.1", 0);
  resolver_set(&r, 2, "127.0.0.3", 4, "127.0.0.1", 4);
  s = as_connect(loop, &r, sv.port, CNET_AUTO_SELECT_PARALLEL, 5000, EV_RACE);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "attempt(127.0.0.3) attempt(127.0.0.1) connect "
                       "close(false)");
  ASSERT_LT(t_connect - t_start, 1000);
  ASSERT_STR_EQ(cnet_socket_attempt_error(s, 0)->code, "ECONNREFUSED");
  ASSERT_EQ(1, sv.conns);
  cnet_socket_free(s);
  cnet_server_free(sv.srv);
  loop_finish(loop);
}

/* Parallel, all refused: the same aggregate as sequential mode. */
TEST_CASE(parallel_all_refused_aggregate) {
  uv_loop_t *loop = loop_new();
  resolver_t r;
  int port = closed_port();
  cnet_socket_t *s;

  reset();
  resolver_set(&r, 3, "127.0.0.3", 4, "127.0.0.1", 4, "127.0.0.4", 4);
  s = as_connect(loop, &r, port, CNET_AUTO_SELECT_PARALLEL, 0, EV_RACE);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "attempt(127.0.0.3) attempt(127.0.0.1) "
                       "attempt(127.0.0.4) error(ECONNREFUSED) close(true)");
  ASSERT_STR_EQ(E.message, F("connect ECONNREFUSED 127.0.0.3:%d; "
                             "connect ECONNREFUSED 127.0.0.1:%d; "
                             "connect ECONNREFUSED 127.0.0.4:%d",
                             port, port, port));
  for (size_t i = 0; i < 3; i++)
    ASSERT_STR_EQ(cnet_socket_attempt_error(s, i)->code, "ECONNREFUSED");
  ASSERT_NULL(cnet_socket_attempt_error(s, 3));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* Parallel + HE-10: destroy() while two attempts run closes both: no SYN
 * left towards either hole, 'close'(false), no third attempt. */
TEST_CASE(parallel_destroy_closes_every_running_attempt) {
  uv_loop_t *loop = loop_new();
  server_t sv = {0};
  hole_t h2, h3;
  resolver_t r;
  cnet_socket_t *s;

  reset();
  server_start(&sv, loop, "127.0.0.1", 0);
  hole_open(&h2, "127.0.0.2", sv.port);
  hole_open(&h3, "127.0.0.3", sv.port);
  resolver_set(&r, 3, "127.0.0.2", 4, "127.0.0.3", 4, "127.0.0.1", 4);
  s = as_connect(loop, &r, sv.port, CNET_AUTO_SELECT_PARALLEL, 60, EV_RACE);
  destroy_after_attempt(s, 2, 30);
  linger(loop, 250);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "attempt(127.0.0.2) attempt(127.0.0.3) close(false)");
  ASSERT_EQ(0, tcp_count("127.0.0.2", sv.port, TCP_SYN_SENT_STATE));
  ASSERT_EQ(0, tcp_count("127.0.0.3", sv.port, TCP_SYN_SENT_STATE));
  ASSERT_EQ(0, sv.conns);
  cnet_socket_free(s);
  cnet_server_free(sv.srv);
  hole_close(&h2);
  hole_close(&h3);
  loop_finish(loop);
}

/* Parallel with connect_timeout: every address black-holed; the whole
 * connect fails with ETIMEDOUT at about connect_timeout and no attempt is
 * left behind. */
TEST_CASE(parallel_connect_timeout_ends_every_attempt) {
  uv_loop_t *loop = loop_new();
  hole_t h2, h3;
  resolver_t r;
  cnet_socket_t *s;

  reset();
  hole_open(&h2, "127.0.0.2", 0);
  hole_open(&h3, "127.0.0.3", h2.port);
  resolver_set(&r, 2, "127.0.0.2", 4, "127.0.0.3", 4);
  {
    cnet_connect_options_t o = {.auto_select_family = CNET_AUTO_SELECT_PARALLEL,
                                .auto_select_family_attempt_timeout = 30,
                                .connect_timeout = 300};

    s = connect_via(loop, &r, h2.port, o, EV_RACE, NULL);
  }
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "attempt(127.0.0.2) attempt(127.0.0.3) "
                       "error(ETIMEDOUT) close(true)");
  ASSERT_GE(t_error - t_start, 290);
  ASSERT_LT(t_error - t_start, 1000);
  ASSERT_EQ(0, tcp_count("127.0.0.2", h2.port, TCP_SYN_SENT_STATE));
  ASSERT_EQ(0, tcp_count("127.0.0.3", h2.port, TCP_SYN_SENT_STATE));
  cnet_socket_free(s);
  hole_close(&h2);
  hole_close(&h3);
  loop_finish(loop);
}

/* ======================================================================== */
/* CN-17 with several addresses                                             */

/* CN-17: autoselection skips a blocked address -- no attempt, no packet --
 * and connects to the next. */
TEST_CASE(cn17_autoselect_skips_blocked_addresses) {
  uv_loop_t *loop = loop_new();
  server_t sv = {0}, blocked = {0};
  resolver_t r;
  cnet_block_list_t *bl = cnet_block_list_new();
  cnet_socket_t *s;
  cnet_address_t ra;

  reset();
  ASSERT_EQ(0, cnet_block_list_add_subnet(bl, "127.0.0.2", 32, 4));
  server_start(&sv, loop, "127.0.0.1", 0);
  server_start(&blocked, loop, "127.0.0.2", sv.port);
  resolver_set(&r, 2, "127.0.0.2", 4, "127.0.0.1", 4);
  {
    cnet_connect_options_t o = {.auto_select_family = CNET_AUTO_SELECT_ON,
                                .block_list = bl};

    s = connect_via(loop, &r, sv.port, o, EV_RACE, end_on_connect);
  }
  linger(loop, 100);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "attempt(127.0.0.1) connect close(false)");
  ASSERT_EQ(0, cnet_socket_remote_address(s, &ra));
  ASSERT_STR_EQ(ra.address, "127.0.0.1");
  ASSERT_EQ(1, sv.conns);
  ASSERT_EQ(0, blocked.conns);
  cnet_socket_free(s);
  cnet_server_free(sv.srv);
  cnet_server_free(blocked.srv);
  cnet_block_list_free(bl);
  loop_finish(loop);
}

/* CN-17: the same in parallel mode. */
TEST_CASE(cn17_parallel_skips_blocked_addresses) {
  uv_loop_t *loop = loop_new();
  server_t sv = {0}, blocked = {0};
  resolver_t r;
  cnet_block_list_t *bl = cnet_block_list_new();
  cnet_socket_t *s;

  reset();
  ASSERT_EQ(0, cnet_block_list_add_address(bl, "127.0.0.2", 4));
  server_start(&sv, loop, "127.0.0.1", 0);
  server_start(&blocked, loop, "127.0.0.2", sv.port);
  resolver_set(&r, 2, "127.0.0.2", 4, "127.0.0.1", 4);
  {
    cnet_connect_options_t o = {.auto_select_family = CNET_AUTO_SELECT_PARALLEL,
                                .block_list = bl};

    s = connect_via(loop, &r, sv.port, o, EV_RACE, end_on_connect);
  }
  linger(loop, 100);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "attempt(127.0.0.1) connect close(false)");
  ASSERT_EQ(1, sv.conns);
  ASSERT_EQ(0, blocked.conns);
  cnet_socket_free(s);
  cnet_server_free(sv.srv);
  cnet_server_free(blocked.srv);
  cnet_block_list_free(bl);
  loop_finish(loop);
}

/* CN-17: when every address is blocked the connect fails with
 * ERR_IP_BLOCKED (Node v22.13: an aggregate of ERR_IP_BLOCKED errors), the
 * message naming the blocked address, and no server sees anything. */
TEST_CASE(cn17_autoselect_every_address_blocked) {
  uv_loop_t *loop = loop_new();
  server_t a = {0}, b = {0};
  resolver_t r;
  cnet_block_list_t *bl = cnet_block_list_new();
  cnet_socket_t *s;

  reset();
  ASSERT_EQ(0, cnet_block_list_add_range(bl, "127.0.0.1", "127.0.0.2", 4));
  server_start(&a, loop, "127.0.0.1", 0);
  server_start(&b, loop, "127.0.0.2", a.port);
  resolver_set(&r, 2, "127.0.0.1", 4, "127.0.0.2", 4);
  {
    cnet_connect_options_t o = {.block_list = bl};

    s = connect_via(loop, &r, a.port, o, EV_RACE, NULL);
  }
  linger(loop, 100);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "error(ERR_IP_BLOCKED) close(true)");
  ASSERT_NOT_NULL(strstr(E.message, "IP(127.0.0.1) is blocked by "
                                    "net.BlockList"));
  ASSERT_EQ(0, a.conns);
  ASSERT_EQ(0, b.conns);
  cnet_socket_free(s);
  cnet_server_free(a.srv);
  cnet_server_free(b.srv);
  cnet_block_list_free(bl);
  loop_finish(loop);
}

/* CN-17: autoselection with a single answer that is blocked: a plain
 * ERR_IP_BLOCKED with Node's message. */
TEST_CASE(cn17_autoselect_single_blocked_address) {
  uv_loop_t *loop = loop_new();
  resolver_t r;
  cnet_block_list_t *bl = cnet_block_list_new();
  cnet_socket_t *s = watch_mask(cnet_socket_new(loop, NULL),
                                EVB(CNET_EV_ERROR) | EVB(CNET_EV_CLOSE) |
                                    EVB(CNET_EV_CONNECT));

  reset();
  ASSERT_EQ(0, cnet_block_list_add_address(bl, "127.0.0.1", 4));
  resolver_set(&r, 1, "127.0.0.1", 4);
  {
    cnet_connect_options_t o = {.port = closed_port(),
                                .host = "localhost",
                                .lookup = fake_lookup,
                                .lookup_ctx = &r,
                                .auto_select_family = CNET_AUTO_SELECT_ON,
                                .block_list = bl};
    ASSERT_EQ(0, do_connect(s, &o, NULL, NULL));
  }
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "error(ERR_IP_BLOCKED) close(true)");
  ASSERT_EQ(CNET_ERR_IP_BLOCKED, E.errnum);
  ASSERT_STR_EQ(E.message, "IP(127.0.0.1) is blocked by net.BlockList");
  cnet_socket_free(s);
  cnet_block_list_free(bl);
  loop_finish(loop);
}

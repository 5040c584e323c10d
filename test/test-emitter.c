/* The listener API (on / once / prepend / off / listener_count) and emission
 * rules, through the public socket and server objects.
 *
 * Repeatable emits come from cnet_server_close() on a server that is not
 * listening: every call emits one deferred 'close' (CL-03). A never-connected
 * socket emits 'error' and 'close' after cnet_socket_destroy(s, &err). */
#include "harness.h"

static trace_t T;

/* ctx is the word to record. */
static void srv_word(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)srv;
  ASSERT_EQ(CNET_EV_CLOSE, ev->type);
  trace_add(&T, ctx);
}

static void sock_word(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  trace_add(&T, ctx);
}

static cnet_server_t *server_new(uv_loop_t *loop) {
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);

  ASSERT_NOT_NULL(srv);
  return srv;
}

/* One 'close' emission per call, on a later tick. */
static void emit_close(cnet_server_t *srv) {
  ASSERT_EQ(0, cnet_server_close(srv, NULL, NULL));
}

static void reset(void) {
  memset(&T, 0, sizeof(T));
}

TEST_CASE(em01_on_prepend_order_and_count) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv;

  reset();
  srv = server_new(loop);
  ASSERT_EQ(0, cnet_server_listener_count(srv, CNET_EV_CLOSE));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "A"));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "B"));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "C"));
  ASSERT_EQ(0, cnet_server_prepend_listener(srv, CNET_EV_CLOSE, srv_word, "P"));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_LISTENING, srv_word, "L"));
  ASSERT_EQ(4, cnet_server_listener_count(srv, CNET_EV_CLOSE));
  ASSERT_EQ(1, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  ASSERT_EQ(0, cnet_server_listener_count(srv, CNET_EV_ERROR));
  emit_close(srv);
  ASSERT_STR_EQ(T.buf, ""); /* deferred, never inside close() */
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "P A B C");
  emit_close(srv);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "P A B C P A B C");
  cnet_server_free(srv);
  loop_finish(loop);
}

TEST_CASE(em02_once_runs_once) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv;

  reset();
  srv = server_new(loop);
  ASSERT_EQ(0, cnet_server_once(srv, CNET_EV_CLOSE, srv_word, "once"));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "on"));
  ASSERT_EQ(2, cnet_server_listener_count(srv, CNET_EV_CLOSE));
  emit_close(srv);
  run_bounded(loop, 2000);
  ASSERT_EQ(1, cnet_server_listener_count(srv, CNET_EV_CLOSE));
  emit_close(srv);
  emit_close(srv);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "once on on on");
  cnet_server_free(srv);
  loop_finish(loop);
}

static int once_seen;

static void once_checks_removed(cnet_server_t *srv, const cnet_event_t *ev,
                                void *ctx) {
  (void)ev;
  (void)ctx;
  once_seen++;
  /* Node's once wrapper removes itself before calling the listener. */
  ASSERT_EQ(1, cnet_server_listener_count(srv, CNET_EV_CLOSE));
  emit_close(srv); /* a later emission must not reach it again */
}

TEST_CASE(em03_once_removed_before_it_runs) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv;

  reset();
  once_seen = 0;
  srv = server_new(loop);
  ASSERT_EQ(0, cnet_server_once(srv, CNET_EV_CLOSE, once_checks_removed, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "after"));
  emit_close(srv);
  run_bounded(loop, 2000);
  ASSERT_EQ(1, once_seen);
  ASSERT_STR_EQ(T.buf, "after after");
  cnet_server_free(srv);
  loop_finish(loop);
}

TEST_CASE(em04_off_removes_most_recent_match) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv;

  reset();
  srv = server_new(loop);
  /* The same triple twice runs twice, as in Node. */
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "X"));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "Y"));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "X"));
  ASSERT_EQ(3, cnet_server_listener_count(srv, CNET_EV_CLOSE));
  emit_close(srv);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "X Y X");
  /* Removes the last "X" (the most recently added), so Y stays before X. */
  ASSERT_EQ(0, cnet_server_off(srv, CNET_EV_CLOSE, srv_word, "X"));
  ASSERT_EQ(2, cnet_server_listener_count(srv, CNET_EV_CLOSE));
  /* No match (other ctx, other type, other fn): 0, nothing removed. */
  ASSERT_EQ(0, cnet_server_off(srv, CNET_EV_CLOSE, srv_word, "Z"));
  ASSERT_EQ(0, cnet_server_off(srv, CNET_EV_ERROR, srv_word, "X"));
  ASSERT_EQ(0, cnet_server_off(srv, CNET_EV_CLOSE, once_checks_removed, "X"));
  ASSERT_EQ(2, cnet_server_listener_count(srv, CNET_EV_CLOSE));
  memset(&T, 0, sizeof(T));
  emit_close(srv);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "X Y");
  /* A once listener removed with off() before its emit never runs. */
  ASSERT_EQ(0, cnet_server_once(srv, CNET_EV_CLOSE, srv_word, "O"));
  ASSERT_EQ(0, cnet_server_off(srv, CNET_EV_CLOSE, srv_word, "O"));
  ASSERT_EQ(0, cnet_server_off(srv, CNET_EV_CLOSE, srv_word, "X"));
  ASSERT_EQ(0, cnet_server_off(srv, CNET_EV_CLOSE, srv_word, "Y"));
  ASSERT_EQ(0, cnet_server_listener_count(srv, CNET_EV_CLOSE));
  memset(&T, 0, sizeof(T));
  emit_close(srv);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "");
  cnet_server_free(srv);
  loop_finish(loop);
}

static int adder_calls;

static void adder(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  trace_add(&T, "adder");
  if (adder_calls++ == 0) {
    ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "new"));
    ASSERT_EQ(
        0, cnet_server_prepend_listener(srv, CNET_EV_CLOSE, srv_word, "pre"));
    /* Counted at once, even though they wait for the next emit. */
    ASSERT_EQ(4, cnet_server_listener_count(srv, CNET_EV_CLOSE));
  }
}

TEST_CASE(em05_listener_added_during_emit_runs_next_emit) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv;

  reset();
  adder_calls = 0;
  srv = server_new(loop);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, adder, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "old"));
  emit_close(srv);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "adder old");
  memset(&T, 0, sizeof(T));
  emit_close(srv);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "pre adder old new");
  cnet_server_free(srv);
  loop_finish(loop);
}

static void remover(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  trace_add(&T, "remover");
  ASSERT_EQ(0, cnet_server_off(srv, CNET_EV_CLOSE, srv_word, "victim"));
  ASSERT_EQ(0, cnet_server_off(srv, CNET_EV_CLOSE, remover, NULL)); /* self */
  ASSERT_EQ(1, cnet_server_listener_count(srv, CNET_EV_CLOSE));
}

/* STYLE 4.1: unlike Node, off() during an emit takes effect at once; the
 * removed listener is not called even by the emit already running. */
TEST_CASE(em06_off_during_emit_takes_effect_at_once) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv;

  reset();
  srv = server_new(loop);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, remover, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "victim"));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "survivor"));
  emit_close(srv);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "remover survivor");
  emit_close(srv);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "remover survivor survivor");
  cnet_server_free(srv);
  loop_finish(loop);
}

static const char *const words[] = {"w0", "w1", "w2", "w3", "w4",
                                    "w5", "w6", "w7", "w8", "w9"};
static int grower_calls;

/* Adds ten listeners while the emit runs: the inline array (2 slots) must
 * grow under the running emit. */
static void grower(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  trace_add(&T, "grower");
  if (grower_calls++ == 0)
    for (size_t i = 0; i < ARRAY_LEN(words); i++)
      ASSERT_EQ(0,
                cnet_socket_on(s, CNET_EV_ERROR, sock_word, (void *)words[i]));
}

TEST_CASE(em07_growth_during_emit) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s;
  cnet_error_t err = {
      .errnum = UV_EPROTO, .code = "EPROTO", .message = "first"};

  reset();
  grower_calls = 0;
  s = cnet_socket_new(loop, NULL);
  ASSERT_NOT_NULL(s);
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, grower, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, sock_word, "second"));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, sock_word, "close"));
  cnet_socket_destroy(s, &err);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "grower second close");
  ASSERT_EQ(12, cnet_socket_listener_count(s, CNET_EV_ERROR));
  /* The socket may connect again after 'close' (CN-18); make it fail the
   * same way and see every listener, in insertion order. */
  memset(&T, 0, sizeof(T));
  ASSERT_EQ(0, cnet_socket_connect_path(s, "/nonexistent/cnet-emitter.sock",
                                        NULL, NULL));
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "grower second w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 close");
  cnet_socket_free(s);
  loop_finish(loop);
}

static void free_in_listener(cnet_socket_t *s, const cnet_event_t *ev,
                             void *ctx) {
  (void)ctx;
  trace_add(&T, cnet_event_name(ev->type));
  trace_add(&T, "free");
  cnet_socket_free(s); /* memory goes only after the 'close' listeners */
  ASSERT_EQ(3, cnet_socket_listener_count(s, CNET_EV_ERROR) +
                   cnet_socket_listener_count(s, CNET_EV_CLOSE));
}

TEST_CASE(em08_free_socket_from_its_error_listener) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s;
  cnet_error_t err = {.errnum = UV_EPROTO, .code = "EPROTO"};

  reset();
  s = cnet_socket_new(loop, NULL);
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, free_in_listener, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, sock_word, "error2"));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, sock_word, "close"));
  cnet_socket_destroy(s, &err);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "error free error2 close");
  loop_finish(loop);
}

static void destroy_in_listener(cnet_socket_t *s, const cnet_event_t *ev,
                                void *ctx) {
  (void)ctx;
  trace_add(&T, cnet_event_name(ev->type));
  cnet_socket_destroy(s, NULL); /* already destroyed: idempotent */
  cnet_socket_free(s);
  cnet_socket_free(NULL); /* ignored */
}

TEST_CASE(em09_free_socket_from_its_close_listener) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s;

  reset();
  s = cnet_socket_new(loop, NULL);
  /* More than the two inline slots, and the first one frees. */
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, destroy_in_listener, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, sock_word, "c2"));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, sock_word, "c3"));
  ASSERT_EQ(0, cnet_socket_once(s, CNET_EV_CLOSE, sock_word, "c4"));
  cnet_socket_destroy(s, NULL);
  ASSERT_STR_EQ(T.buf, ""); /* DS-01: 'close' is not inside destroy() */
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "close c2 c3 c4");
  loop_finish(loop);
}

static void srv_free_in_listener(cnet_server_t *srv, const cnet_event_t *ev,
                                 void *ctx) {
  (void)ev;
  trace_add(&T, ctx);
  cnet_server_free(srv);
}

TEST_CASE(em10_free_server_from_its_close_listener) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv;

  reset();
  srv = server_new(loop);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_free_in_listener, "F"));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "after"));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_word, "after2"));
  emit_close(srv);
  emit_close(srv); /* a second emission already queued: still delivered */
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "F after after2 F after after2");
  loop_finish(loop);
}

static void remove_all_then_free(cnet_socket_t *s, const cnet_event_t *ev,
                                 void *ctx) {
  (void)ev;
  (void)ctx;
  trace_add(&T, "first");
  ASSERT_EQ(0, cnet_socket_off(s, CNET_EV_CLOSE, sock_word, "b"));
  ASSERT_EQ(0, cnet_socket_off(s, CNET_EV_CLOSE, sock_word, "c"));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, sock_word, "late"));
  cnet_socket_free(s);
}

TEST_CASE(em11_off_and_add_during_emit_then_free) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s;

  reset();
  s = cnet_socket_new(loop, NULL);
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, remove_all_then_free, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, sock_word, "b"));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, sock_word, "c"));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, sock_word, "d"));
  cnet_socket_destroy(s, NULL);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "first d");
  loop_finish(loop);
}

TEST_CASE(em12_invalid_arguments) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  cnet_server_t *srv = server_new(loop);

  ASSERT_EQ(UV_EINVAL, cnet_socket_on(NULL, CNET_EV_DATA, sock_word, NULL));
  ASSERT_EQ(UV_EINVAL, cnet_socket_on(s, CNET_EV_DATA, NULL, NULL));
  ASSERT_EQ(UV_EINVAL, cnet_socket_once(s, CNET_EV_COUNT_, sock_word, NULL));
  ASSERT_EQ(UV_EINVAL, cnet_socket_prepend_listener(s, (cnet_event_type_t)-1,
                                                    sock_word, NULL));
  ASSERT_EQ(UV_EINVAL, cnet_server_on(NULL, CNET_EV_CLOSE, srv_word, NULL));
  ASSERT_EQ(UV_EINVAL, cnet_server_once(srv, CNET_EV_CLOSE, NULL, NULL));
  ASSERT_EQ(UV_EINVAL,
            cnet_server_prepend_listener(srv, CNET_EV_COUNT_, srv_word, NULL));
  ASSERT_EQ(0, cnet_socket_listener_count(NULL, CNET_EV_DATA));
  ASSERT_EQ(0, cnet_server_listener_count(NULL, CNET_EV_CLOSE));
  ASSERT_EQ(0, cnet_socket_listener_count(s, CNET_EV_COUNT_));
  ASSERT_EQ(0, cnet_socket_off(s, CNET_EV_DATA, sock_word, NULL));
  ASSERT_EQ(0, cnet_server_off(srv, CNET_EV_CLOSE, srv_word, NULL));
  ASSERT_EQ(0, cnet_socket_listener_count(s, CNET_EV_DATA));
  cnet_socket_free(s);
  cnet_server_free(srv);
  loop_finish(loop);
}

TEST_CASE(em13_event_names) {
  static const struct {
    cnet_event_type_t type;
    const char *name;
  } names[] = {
      {CNET_EV_ACCEPT_ERROR, "acceptError"},
      {CNET_EV_CLOSE, "close"},
      {CNET_EV_CONNECT, "connect"},
      {CNET_EV_CONNECTION, "connection"},
      {CNET_EV_CONNECTION_ATTEMPT, "connectionAttempt"},
      {CNET_EV_CONNECTION_ATTEMPT_FAILED, "connectionAttemptFailed"},
      {CNET_EV_CONNECTION_ATTEMPT_TIMEOUT, "connectionAttemptTimeout"},
      {CNET_EV_DATA, "data"},
      {CNET_EV_DRAIN, "drain"},
      {CNET_EV_DROP, "drop"},
      {CNET_EV_END, "end"},
      {CNET_EV_ERROR, "error"},
      {CNET_EV_FINISH, "finish"},
      {CNET_EV_LISTENING, "listening"},
      {CNET_EV_LOOKUP, "lookup"},
      {CNET_EV_MESSAGE, "message"},
      {CNET_EV_READY, "ready"},
      {CNET_EV_TIMEOUT, "timeout"},
  };

  ASSERT_EQ(18, CNET_EV_COUNT_);
  for (size_t i = 0; i < ARRAY_LEN(names); i++)
    ASSERT_STR_EQ(cnet_event_name(names[i].type), names[i].name);
  ASSERT_NULL(cnet_event_name(CNET_EV_COUNT_));
  ASSERT_NULL(cnet_event_name((cnet_event_type_t)-1));
  ASSERT_NULL(cnet_event_name((cnet_event_type_t)1000));
}

/* The event a listener receives is typed, and its ctx is the one given. */
static void check_ctx(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  int *n = ctx;

  ASSERT_EQ(CNET_EV_CLOSE, ev->type);
  ASSERT_NOT_NULL(ev->close.error); /* CL-03: not running */
  ASSERT_STR_EQ(ev->close.error->code, "ERR_SERVER_NOT_RUNNING");
  ASSERT_NOT_NULL(srv);
  (*n)++;
}

TEST_CASE(em14_same_fn_different_ctx_are_different_listeners) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop);
  int a = 0, b = 0;

  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, check_ctx, &a));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, check_ctx, &b));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, check_ctx, &b));
  ASSERT_EQ(0, cnet_server_off(srv, CNET_EV_CLOSE, check_ctx, &a));
  emit_close(srv);
  run_bounded(loop, 2000);
  ASSERT_EQ(0, a);
  ASSERT_EQ(2, b);
  cnet_server_free(srv);
  loop_finish(loop);
}

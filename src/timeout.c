/* socket.setTimeout(): 'timeout' after a period with no activity.
 *
 * Re-arming a timer on every read and write would cost a heap operation
 * each time. Instead activity records uv_now() (cnet__timeout_touch), and
 * the timer, when it fires, looks at that time: if there was activity it
 * sleeps again for what is left of the period; if not, 'timeout' is
 * emitted and the timer stays stopped until the next activity (TO-04: once
 * per idle period, not periodically). The timer is unref'd: an idle
 * timeout never keeps the loop alive (RF-05). */
#include "internal.h"

#include <stdio.h>

#define TIMEOUT_MAX_MS 2147483647u /* 2^31-1 */

/* TO-09: the period is the value given, clamped as Node clamps it. */
static uint64_t period(const cnet__extra_t *x) {
  return x->timeout > TIMEOUT_MAX_MS ? TIMEOUT_MAX_MS : x->timeout;
}

static size_t queued_bytes(const cnet_socket_t *s) {
  size_t n = s->writable_length;

  if (s->flags & S_HANDLE_OPEN)
    n += uv_stream_get_write_queue_size(&s->h.stream);
  return n;
}

static void arm(cnet_socket_t *s, uint64_t ms);

static void on_timer(uv_timer_t *timer) {
  cnet__extra_t *x = container_of(timer, cnet__extra_t, timer);
  cnet_socket_t *s = timer->data;
  cnet__loop_t *L = s->loop;
  uint64_t now = uv_now(L->uv), due = x->last_activity + period(x);
  size_t queued;

  if ((s->flags & S_DESTROYED) || x->timeout == 0)
    return;
  if (now < due) { /* there was activity: sleep for the rest */
    arm(s, due - now);
    return;
  }
  /* TO-06: a write still making progress is activity too (Node's
   * kLastWriteQueueSize check). */
  queued = queued_bytes(s);
  if (queued != 0 && queued != x->last_queued) {
    x->last_queued = queued;
    x->last_activity = now;
    arm(s, period(x));
    return;
  }
  x->timeout_fired = true;
  cnet__loop_enter(L);
  cnet__socket_emit_simple(s, CNET_EV_TIMEOUT);
  cnet__loop_leave(L);
}

static void arm(cnet_socket_t *s, uint64_t ms) {
  cnet__extra_t *x = s->extra;

  if (!x->timer_open) {
    uv_timer_init(s->loop->uv, &x->timer);
    uv_unref((uv_handle_t *)&x->timer);
    x->timer.data = s;
    x->timer_open = true;
  }
  uv_timer_start(&x->timer, on_timer, ms, 0);
}

void cnet__timeout_touch_slow(cnet_socket_t *s) {
  cnet__extra_t *x = s->extra;

  x->last_activity = uv_now(s->loop->uv);
  if (x->timeout_fired && !(s->flags & S_DESTROYED)) {
    x->timeout_fired = false;
    arm(s, period(x));
  }
}

static void on_timer_closed(uv_handle_t *h) {
  cnet__socket_release(h->data);
}

void cnet__timeout_stop(cnet_socket_t *s) {
  cnet__extra_t *x = s->extra;

  if (x == NULL || !x->timer_open)
    return;
  x->timer_open = false;
  x->timeout_fired = false;
  cnet__socket_retain(s); /* the timer's memory lives in s->extra */
  uv_close((uv_handle_t *)&x->timer, on_timer_closed);
}

int cnet_socket_set_timeout(cnet_socket_t *s, int64_t msecs,
                            cnet_socket_listener listener, void *ctx) {
  cnet__extra_t *x;

  if (s == NULL)
    return cnet__fail(UV_EINVAL);
  if (s->flags & S_DESTROYED)
    return 0; /* TO-08: before any check, as Node's setStreamTimeout */
  if (msecs < 0) { /* TO-02 */
    char received[32];
    snprintf(received, sizeof(received), "%lld", (long long)msecs);
    return cnet__fail(CNET_ERR_OUT_OF_RANGE, "msecs",
                      "a non-negative finite number", received);
  }
  if (msecs == 0) { /* TO-03 */
    if (s->extra != NULL) {
      s->extra->timeout = 0;
      s->extra->timeout_fired = false;
      if (s->extra->timer_open)
        uv_timer_stop(&s->extra->timer);
    }
    if (listener != NULL)
      cnet_socket_off(s, CNET_EV_TIMEOUT, listener, ctx);
    return 0;
  }
  if ((x = cnet__socket_extra(s)) == NULL)
    return cnet__fail(UV_ENOMEM);
  if (listener != NULL && cnet_socket_once(s, CNET_EV_TIMEOUT, listener,
                                           ctx) != 0)
    return cnet__fail(UV_ENOMEM);
  x->timeout = (uint64_t)msecs;
  x->last_activity = uv_now(s->loop->uv);
  x->last_queued = 0;
  x->timeout_fired = false;
  arm(s, period(x));
  return 0;
}

uint64_t cnet_socket_timeout(const cnet_socket_t *s) {
  return s != NULL && s->extra != NULL ? s->extra->timeout : 0;
}

/* The two per-completion steps of scoring that cost the most, in C: `env_server.scoring._core`.
 *
 * Each function here returns, for every input its Python specification accepts, what that specification
 * returns: the same values, of the same types. The Python functions stay the specification and the
 * fallback (no C compiler: `python -m env_server.scoring.native` says so and they run instead); the tests compare
 * the two field by field on generated and adversarial text (tests/env_server/scoring/test_core_c.py), and the
 * reward digest, the property test against the published code and gold = 100 run on whichever is loaded.
 *
 * `parse_strict(text)` is `parsing.parse_strict_reference`, the `default` profile's reading:
 *
 *   1. The last complete `<schedule>...</schedule>` block: `rfind` of the closing tag, then of the
 *      opening tag before it.
 *   2. Its events as `STRICT_EVENT.split` finds them. A match can only start at `<event>`, and the
 *      pattern never backtracks usefully (`\s*` is always followed by `<`, which is not white space;
 *      `[^<]+` is always followed by `<`), so each candidate `<event>` is matched deterministically, and
 *      a failed candidate moves the search on to the next `<event>`.
 *   3. White space is Python's: `\s` in a str pattern, `str.strip` and `str.isspace` all use
 *      `Py_UNICODE_ISSPACE`. Digits in times are ASCII (`[0-9]`).
 *   4. The format check (`_strict_frame_at`): only white space after the block; the text opens (after
 *      white space) with `<think>`; the first `think>` after it closes the reasoning (`</think>`), not
 *      a second `<think>`; only white space between `</think>` and the block; the reasoning is not
 *      blank.
 *
 *   Times come from tables built once: every "DD:DD" string (interned, so its hash is cached for the
 *   dictionary look-ups that follow) and its minutes (h * 60 + m).
 *
 * `analyse(parsed, problem)` is `checks.analyse_reference` for both profiles' `Parsed` (times of at most
 * a few thousand minutes, as the parsers produce): each event looked up in `problem.exact`, repeats,
 * order breaks, the disjointness test and the value, in one pass and without Python-level iteration.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

#define N_TIMES 10000 /* "00:00" .. "99:99" */

static PyObject *hhmm[N_TIMES];   /* the time strings */
static PyObject *minutes[N_TIMES]; /* their minutes */
static PyObject *s_open, *s_close, *s_event;
static PyTypeObject *parsed_type; /* env_server.scoring.parsing.Parsed */
static PyObject *no_events;       /* env_server.scoring.parsing._NO_EVENTS */

typedef struct {
    int kind;
    const void *data;
    Py_ssize_t limit; /* matching stops here (the end of the schedule block's body) */
} Text;

#define READ(t, i) PyUnicode_READ((t)->kind, (t)->data, (i))

typedef struct {
    Py_ssize_t name_start, name_end; /* the name, stripped */
    int start, end;                   /* time codes: the four digits as a number */
} Event;

static int literal(const Text *t, Py_ssize_t *pos, const char *lit, Py_ssize_t len) {
    if (*pos + len > t->limit)
        return 0;
    for (Py_ssize_t k = 0; k < len; k++)
        if (READ(t, *pos + k) != (Py_UCS4)(unsigned char)lit[k])
            return 0;
    *pos += len;
    return 1;
}

static void skip_space(const Text *t, Py_ssize_t *pos) {
    while (*pos < t->limit && Py_UNICODE_ISSPACE(READ(t, *pos)))
        ++*pos;
}

static int is_digit(Py_UCS4 c) { return c >= '0' && c <= '9'; }

/* `[0-9]{2}:[0-9]{2}`: the four digits as one number (hh * 100 + mm), or -1. */
static int time_code(const Text *t, Py_ssize_t *pos) {
    Py_ssize_t p = *pos;
    if (p + 5 > t->limit)
        return -1;
    Py_UCS4 a = READ(t, p), b = READ(t, p + 1), c = READ(t, p + 2), d = READ(t, p + 3), e = READ(t, p + 4);
    if (!is_digit(a) || !is_digit(b) || c != ':' || !is_digit(d) || !is_digit(e))
        return -1;
    *pos = p + 5;
    return (int)((a - '0') * 1000 + (b - '0') * 100 + (d - '0') * 10 + (e - '0'));
}

/* `\s*<tag>[0-9]{2}:[0-9]{2}</tag>` at `*pos`: the time code (moving `*pos` past it), or -1. */
static int tagged_time(const Text *t, Py_ssize_t *pos, const char *open, Py_ssize_t n_open, const char *close,
                       Py_ssize_t n_close) {
    skip_space(t, pos);
    if (!literal(t, pos, open, n_open))
        return -1;
    int code = time_code(t, pos);
    return code < 0 || !literal(t, pos, close, n_close) ? -1 : code;
}

/* The strict event pattern at `p` (where `<event>` starts); on a match, its end and the event. */
static int match_event(const Text *t, Py_ssize_t p, Py_ssize_t *end, Event *ev) {
    Py_ssize_t q = p + 7; /* after "<event>" */
    skip_space(t, &q);
    if (!literal(t, &q, "<name>", 6))
        return 0;
    Py_ssize_t name_start = q;
    while (q < t->limit && READ(t, q) != '<')
        q++;
    Py_ssize_t name_end = q;
    if (name_end == name_start || !literal(t, &q, "</name>", 7))
        return 0;
    int start = tagged_time(t, &q, "<start>", 7, "</start>", 8);
    if (start < 0)
        return 0;
    int stop = tagged_time(t, &q, "<end>", 5, "</end>", 6);
    if (stop < 0)
        return 0;
    skip_space(t, &q);
    if (!literal(t, &q, "</event>", 8))
        return 0;
    /* the name as `str.strip` leaves it */
    while (name_start < name_end && Py_UNICODE_ISSPACE(READ(t, name_start)))
        name_start++;
    while (name_end > name_start && Py_UNICODE_ISSPACE(READ(t, name_end - 1)))
        name_end--;
    ev->name_start = name_start;
    ev->name_end = name_end;
    ev->start = start;
    ev->end = stop;
    *end = q;
    return 1;
}

static int all_space(const Text *t, Py_ssize_t from, Py_ssize_t to) {
    for (Py_ssize_t i = from; i < to; i++)
        if (!Py_UNICODE_ISSPACE(READ(t, i)))
            return 0;
    return 1;
}

/* Where the first `<` at or after `from` is (before `t->limit`), or -1. */
static Py_ssize_t next_lt(const Text *t, Py_ssize_t from) {
    if (from >= t->limit)
        return -1;
    if (t->kind == PyUnicode_1BYTE_KIND) {
        const char *data = (const char *)t->data;
        const char *hit = memchr(data + from, '<', (size_t)(t->limit - from));
        return hit == NULL ? -1 : (Py_ssize_t)(hit - data);
    }
    for (Py_ssize_t i = from; i < t->limit; i++)
        if (READ(t, i) == '<')
            return i;
    return -1;
}

/* `_strict_frame_at(text, open_, close)`. */
static int frame_ok(const Text *block, Py_ssize_t length, Py_ssize_t open_, Py_ssize_t close) {
    Text whole = {block->kind, block->data, length};
    const Text *t = &whole;
    if (!all_space(t, close + 11, length)) /* after "</schedule>" */
        return 0;
    Py_ssize_t start = 0;
    while (start < length && Py_UNICODE_ISSPACE(READ(t, start)))
        start++;
    Py_ssize_t pos = start;
    if (!literal(t, &pos, "<think>", 7))
        return 0;
    /* The reference looks for the first `think>` in the reasoning that follows `<` (another `<think>`:
       refused) or `</` (the end of the reasoning). Both start with `<`, and their order by where `think>`
       is found is their order by where that `<` is (a `</think>` whose `<` is right before another's `<`
       cannot exist), so the same answer comes from the first `<` that starts either tag: found with
       memchr, several times faster than a substring search over ~1.5 k characters of reasoning. Neither
       tag can run past `open_`, where `<schedule>` starts. */
    Text before = {block->kind, block->data, open_};
    Py_ssize_t body = pos, end;
    for (Py_ssize_t i = body;; i++) {
        i = next_lt(&before, i);
        if (i < 0)
            return 0;
        Py_ssize_t q = i + 1;
        if (literal(&before, &q, "think>", 6))
            return 0; /* `<think>` inside the reasoning */
        if (literal(&before, &q, "/think>", 7)) {
            end = i;
            break;
        }
    }
    if (end == body || !all_space(t, end + 8, open_))
        return 0;
    return !all_space(t, body, end); /* blank reasoning */
}

static PyObject *parse_strict(PyObject *module, PyObject *text) {
    (void)module;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "parse_strict() takes a str");
        return NULL;
    }
    if (parsed_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "env_server.scoring._core.setup_parse() was not called");
        return NULL;
    }
    if (PyUnicode_READY(text) < 0)
        return NULL;
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    Py_ssize_t close = PyUnicode_Find(text, s_close, 0, length, -1);
    if (close == -2)
        return NULL;
    Py_ssize_t open_ = close >= 0 ? PyUnicode_Find(text, s_open, 0, close, -1) : -1;
    if (open_ == -2)
        return NULL;
    if (open_ < 0)
        return Py_NewRef(no_events);

    Text t = {PyUnicode_KIND(text), PyUnicode_DATA(text), close};
    Event small[16], *events = small;
    Py_ssize_t n = 0, cap = 16;
    int only_events = 1;
    Py_ssize_t pos = open_ + 10, gap = pos; /* gap: where the text between events starts */
    PyObject *result = NULL, *keys = NULL, *starts = NULL, *ends = NULL;
    for (;;) {
        Py_ssize_t p = PyUnicode_Find(text, s_event, pos, close, 1);
        if (p == -2)
            goto done;
        if (p < 0)
            break;
        Py_ssize_t after;
        Event ev;
        if (!match_event(&t, p, &after, &ev)) {
            pos = p + 1;
            continue;
        }
        if (only_events && !all_space(&t, gap, p))
            only_events = 0;
        if (n == cap) {
            Event *grown = PyMem_Malloc(sizeof(Event) * (size_t)cap * 2);
            if (grown == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            memcpy(grown, events, sizeof(Event) * (size_t)n);
            if (events != small)
                PyMem_Free(events);
            events = grown;
            cap *= 2;
        }
        events[n++] = ev;
        pos = gap = after;
    }
    if (n == 0) {
        result = Py_NewRef(no_events);
        goto done;
    }
    if (only_events && !all_space(&t, gap, close))
        only_events = 0;
    int format_ok = only_events && frame_ok(&t, length, open_, close);
    keys = PyTuple_New(n);
    starts = PyTuple_New(n);
    ends = PyTuple_New(n);
    if (keys == NULL || starts == NULL || ends == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        Event *ev = &events[i];
        PyObject *name = PyUnicode_Substring(text, ev->name_start, ev->name_end);
        if (name == NULL)
            goto done;
        PyObject *key = PyTuple_New(3);
        if (key == NULL) {
            Py_DECREF(name);
            goto done;
        }
        PyTuple_SET_ITEM(key, 0, name);
        PyTuple_SET_ITEM(key, 1, Py_NewRef(hhmm[ev->start]));
        PyTuple_SET_ITEM(key, 2, Py_NewRef(hhmm[ev->end]));
        PyTuple_SET_ITEM(keys, i, key);
        PyTuple_SET_ITEM(starts, i, Py_NewRef(minutes[ev->start]));
        PyTuple_SET_ITEM(ends, i, Py_NewRef(minutes[ev->end]));
    }
    result = parsed_type->tp_alloc(parsed_type, 5);
    if (result == NULL)
        goto done;
    PyTuple_SET_ITEM(result, 0, keys);
    PyTuple_SET_ITEM(result, 1, starts);
    PyTuple_SET_ITEM(result, 2, ends);
    PyTuple_SET_ITEM(result, 3, Py_NewRef(format_ok ? Py_True : Py_False));
    PyTuple_SET_ITEM(result, 4, Py_NewRef(Py_True));
    keys = starts = ends = NULL; /* now owned by the result */
done:
    Py_XDECREF(keys);
    Py_XDECREF(starts);
    Py_XDECREF(ends);
    if (events != small)
        PyMem_Free(events);
    return result;
}

/* -- analyse ------------------------------------------------------------------------------------- */

static PyTypeObject *analysis_type; /* env_server.scoring.checks.Analysis */
static PyObject *s_exact, *s_values;

/* The ints of a tuple of ints, into `out` (n of them). */
static int read_ints(PyObject *tuple, long long *out, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(tuple, i));
        if (out[i] == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

static PyObject *positions(const Py_ssize_t *at, Py_ssize_t n) {
    PyObject *out = PyTuple_New(n);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *x = PyLong_FromSsize_t(at[i]);
        if (x == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, i, x);
    }
    return out;
}

static PyObject *analyse(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "analyse() takes a Parsed and a ProblemIndex");
        return NULL;
    }
    if (analysis_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "env_server.scoring._core.setup_analyse() was not called");
        return NULL;
    }
    PyObject *parsed = args[0], *problem = args[1];
    if (!PyTuple_Check(parsed) || PyTuple_GET_SIZE(parsed) != 5) {
        PyErr_SetString(PyExc_TypeError, "analyse() needs a Parsed");
        return NULL;
    }
    PyObject *keys = PyTuple_GET_ITEM(parsed, 0), *starts = PyTuple_GET_ITEM(parsed, 1),
             *ends = PyTuple_GET_ITEM(parsed, 2);
    if (!PyTuple_Check(keys) || !PyTuple_Check(starts) || !PyTuple_Check(ends)) {
        PyErr_SetString(PyExc_TypeError, "a Parsed holds tuples");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(keys);
    if (PyTuple_GET_SIZE(starts) != n || PyTuple_GET_SIZE(ends) != n) {
        PyErr_SetString(PyExc_ValueError, "a Parsed has columns of one length");
        return NULL;
    }
    PyObject *exact = NULL, *values = NULL, *matches = NULL, *repeated = NULL, *breaks = NULL;
    PyObject *result = NULL, *value_obj = NULL, *n_obj = NULL;
    long long *times = NULL;
    Py_ssize_t *at = NULL;
    unsigned char *seen = NULL;

    exact = PyObject_GetAttr(problem, s_exact);
    values = exact == NULL ? NULL : PyObject_GetAttr(problem, s_values);
    if (values == NULL)
        goto done;
    if (!PyDict_Check(exact) || !PyTuple_Check(values)) {
        PyErr_SetString(PyExc_TypeError, "a ProblemIndex has a dict `exact` and a tuple `values`");
        goto done;
    }
    Py_ssize_t n_input = PyTuple_GET_SIZE(values);
    times = PyMem_Malloc(sizeof(long long) * (size_t)(2 * n + 1));
    at = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n + 1));
    seen = PyMem_Calloc((size_t)n_input + 1, 1);
    matches = PyTuple_New(n);
    if (times == NULL || at == NULL || seen == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (matches == NULL)
        goto done;

    /* matches, repeats (positions whose input event occurred earlier) and the value */
    int known = 1;
    Py_ssize_t n_none = 0, n_rep = 0;
    long long value = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *m = PyDict_GetItemWithError(exact, PyTuple_GET_ITEM(keys, i));
        if (m == NULL) {
            if (PyErr_Occurred())
                goto done;
            known = 0;
            n_none++;
            PyTuple_SET_ITEM(matches, i, Py_NewRef(Py_None));
            continue;
        }
        PyTuple_SET_ITEM(matches, i, Py_NewRef(m));
        Py_ssize_t k = PyLong_AsSsize_t(m);
        if (k == -1 && PyErr_Occurred())
            goto done;
        if (k < 0 || k >= n_input) {
            PyErr_SetString(PyExc_IndexError, "an event index of `exact` outside `values`");
            goto done;
        }
        if (seen[k])
            at[n_rep++] = i;
        seen[k] = 1;
        long long v = PyLong_AsLongLong(PyTuple_GET_ITEM(values, k));
        if (v == -1 && PyErr_Occurred())
            goto done;
        value += v;
    }
    /* `len(set(matches)) == n`: no input event twice, and at most one None */
    int distinct = n_rep == 0 && n_none <= 1;
    if (!(distinct && known))
        value = 0;
    repeated = positions(at, n_rep);
    if (repeated == NULL)
        goto done;

    /* order and overlaps, in the order written */
    long long *s = times, *e = times + n;
    if (read_ints(starts, s, n) < 0 || read_ints(ends, e, n) < 0)
        goto done;
    int disjoint = 1;
    for (Py_ssize_t i = 0; disjoint && i < n; i++)
        if (!(s[i] < e[i]) || (i + 1 < n && !(e[i] <= s[i + 1])))
            disjoint = 0;
    Py_ssize_t n_breaks = 0;
    if (!disjoint)
        for (Py_ssize_t i = 1; i < n; i++)
            if (s[i] <= s[i - 1])
                at[n_breaks++] = i;
    breaks = positions(at, n_breaks);
    value_obj = breaks == NULL ? NULL : PyLong_FromLongLong(value);
    n_obj = value_obj == NULL ? NULL : PyLong_FromSsize_t(n);
    result = n_obj == NULL ? NULL : analysis_type->tp_alloc(analysis_type, 9);
    if (result == NULL)
        goto done;
    PyTuple_SET_ITEM(result, 0, Py_NewRef(parsed));
    PyTuple_SET_ITEM(result, 1, matches);
    PyTuple_SET_ITEM(result, 2, repeated);
    PyTuple_SET_ITEM(result, 3, breaks);
    PyTuple_SET_ITEM(result, 4, n_obj);
    PyTuple_SET_ITEM(result, 5, Py_NewRef(known ? Py_True : Py_False));
    PyTuple_SET_ITEM(result, 6, Py_NewRef(n_breaks == 0 ? Py_True : Py_False));
    PyTuple_SET_ITEM(result, 7, Py_NewRef(disjoint ? Py_True : Py_False));
    PyTuple_SET_ITEM(result, 8, value_obj);
    matches = repeated = breaks = n_obj = value_obj = NULL; /* now owned by the result */
done:
    Py_XDECREF(exact);
    Py_XDECREF(values);
    Py_XDECREF(matches);
    Py_XDECREF(repeated);
    Py_XDECREF(breaks);
    Py_XDECREF(n_obj);
    Py_XDECREF(value_obj);
    PyMem_Free(times);
    PyMem_Free(at);
    PyMem_Free(seen);
    return result;
}

/* -- violations ---------------------------------------------------------------------------------- */

#define MAX_REPORTED_PAIRS 50 /* checks.MAX_REPORTED_PAIRS */

static PyObject *s_type, *s_indices, *s_events, *s_message, *s_name, *s_start, *s_end;
static PyObject *k_format, *k_too_few, *k_unknown, *k_repeated, *k_unsorted, *k_overlap, *m_format;

/* `_as_wire(key)`: {"name", "start", "end"} of a (name, start, end) key. */
static PyObject *as_wire(PyObject *key) {
    PyObject *d = PyDict_New();
    if (d == NULL || PyDict_SetItem(d, s_name, PyTuple_GET_ITEM(key, 0)) < 0 ||
        PyDict_SetItem(d, s_start, PyTuple_GET_ITEM(key, 1)) < 0 ||
        PyDict_SetItem(d, s_end, PyTuple_GET_ITEM(key, 2)) < 0) {
        Py_XDECREF(d);
        return NULL;
    }
    return d;
}

/* Append `_violation(kind, [positions], [events of those positions], message)` to `out`; steals
 * `message`. */
static int add_violation(PyObject *out, PyObject *kind, PyObject *keys, const Py_ssize_t *at, Py_ssize_t n_at,
                         PyObject *message) {
    PyObject *indices = NULL, *events = NULL, *v = NULL;
    int ok = -1;
    if (message == NULL)
        return -1;
    indices = PyList_New(n_at);
    events = PyList_New(n_at);
    if (indices == NULL || events == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < n_at; k++) {
        PyObject *pos = PyLong_FromSsize_t(at[k]);
        if (pos == NULL)
            goto done;
        PyList_SET_ITEM(indices, k, pos);
        PyObject *ev = as_wire(PyTuple_GET_ITEM(keys, at[k]));
        if (ev == NULL)
            goto done;
        PyList_SET_ITEM(events, k, ev);
    }
    v = PyDict_New();
    if (v == NULL || PyDict_SetItem(v, s_type, kind) < 0 || PyDict_SetItem(v, s_indices, indices) < 0 ||
        PyDict_SetItem(v, s_events, events) < 0 || PyDict_SetItem(v, s_message, message) < 0)
        goto done;
    ok = PyList_Append(out, v);
done:
    Py_XDECREF(indices);
    Py_XDECREF(events);
    Py_XDECREF(v);
    Py_DECREF(message);
    return ok;
}

/* Field `k` of event `pos`'s (name, start, end) key (every key's shape is checked on entry). */
static PyObject *key_item(PyObject *keys, Py_ssize_t pos, Py_ssize_t k) {
    return PyTuple_GET_ITEM(PyTuple_GET_ITEM(keys, pos), k);
}

/* Item `r` of a tuple of positions, checked to lie in [low, n); -1 with an exception otherwise. */
static Py_ssize_t position(PyObject *positions, Py_ssize_t r, Py_ssize_t low, Py_ssize_t n) {
    Py_ssize_t pos = PyLong_AsSsize_t(PyTuple_GET_ITEM(positions, r));
    if (pos == -1 && PyErr_Occurred())
        return -1;
    if (pos < low || pos >= n) {
        PyErr_SetString(PyExc_IndexError, "a position outside the schedule");
        return -1;
    }
    return pos;
}

typedef struct {
    long long start, end;
    Py_ssize_t index;
} Span;

/* `sorted(range(n), key=spans.__getitem__)`: by (start, end), ties in index order (a stable sort). */
static int span_order(const void *x, const void *y) {
    const Span *a = x, *b = y;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    if (a->end != b->end)
        return a->end < b->end ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

typedef struct {
    Py_ssize_t i, j;
} Pair;

static int pair_order(const void *x, const void *y) {
    const Pair *a = x, *b = y;
    if (a->i != b->i)
        return a->i < b->i ? -1 : 1;
    return a->j < b->j ? -1 : a->j > b->j;
}

static PyObject *violations(PyObject *module, PyObject *a) {
    (void)module;
    if (!PyTuple_Check(a) || PyTuple_GET_SIZE(a) != 9 || !PyTuple_Check(PyTuple_GET_ITEM(a, 0)) ||
        PyTuple_GET_SIZE(PyTuple_GET_ITEM(a, 0)) != 5) {
        PyErr_SetString(PyExc_TypeError, "violations() needs an Analysis");
        return NULL;
    }
    PyObject *parsed = PyTuple_GET_ITEM(a, 0), *matches = PyTuple_GET_ITEM(a, 1),
             *repeated = PyTuple_GET_ITEM(a, 2), *breaks = PyTuple_GET_ITEM(a, 3);
    PyObject *keys = PyTuple_GET_ITEM(parsed, 0), *starts = PyTuple_GET_ITEM(parsed, 1),
             *ends = PyTuple_GET_ITEM(parsed, 2);
    if (!PyTuple_Check(matches) || !PyTuple_Check(repeated) || !PyTuple_Check(breaks) || !PyTuple_Check(keys) ||
        !PyTuple_Check(starts) || !PyTuple_Check(ends)) {
        PyErr_SetString(PyExc_TypeError, "an Analysis holds tuples");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(keys);
    if (PyTuple_GET_SIZE(matches) != n || PyTuple_GET_SIZE(starts) != n || PyTuple_GET_SIZE(ends) != n) {
        PyErr_SetString(PyExc_ValueError, "an Analysis has columns of one length");
        return NULL;
    }
    for (Py_ssize_t pos = 0; pos < n; pos++) {
        PyObject *key = PyTuple_GET_ITEM(keys, pos);
        if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 3) {
            PyErr_SetString(PyExc_TypeError, "an event key is a (name, start, end) tuple");
            return NULL;
        }
    }
    int has_schedule = PyObject_IsTrue(PyTuple_GET_ITEM(parsed, 4));
    int all_known = PyObject_IsTrue(PyTuple_GET_ITEM(a, 5));
    int disjoint = PyObject_IsTrue(PyTuple_GET_ITEM(a, 7));
    Py_ssize_t n_events = PyLong_AsSsize_t(PyTuple_GET_ITEM(a, 4));
    if (has_schedule < 0 || all_known < 0 || disjoint < 0 || (n_events == -1 && PyErr_Occurred()))
        return NULL;

    PyObject *out = PyList_New(0);
    Py_ssize_t *at = NULL;
    unsigned char *skip = NULL;
    Span *spans = NULL;
    Pair *pairs = NULL;
    if (out == NULL)
        return NULL;
    if (!has_schedule && add_violation(out, k_format, keys, NULL, 0, Py_NewRef(m_format)) < 0)
        goto fail;
    if (n_events < 2 &&
        add_violation(out, k_too_few, keys, NULL, 0,
                      PyUnicode_FromFormat("%zd event(s); at least 2 are required", n_events)) < 0)
        goto fail;
    if (!all_known)
        for (Py_ssize_t pos = 0; pos < n; pos++) {
            if (PyTuple_GET_ITEM(matches, pos) != Py_None)
                continue;
            PyObject *msg = PyUnicode_FromFormat("%R %S-%S is not an input event", key_item(keys, pos, 0),
                                                 key_item(keys, pos, 1), key_item(keys, pos, 2));
            if (add_violation(out, k_unknown, keys, &pos, 1, msg) < 0)
                goto fail;
        }
    for (Py_ssize_t r = 0; r < PyTuple_GET_SIZE(repeated); r++) {
        Py_ssize_t pos = position(repeated, r, 0, n);
        if (pos < 0)
            goto fail;
        PyObject *msg = PyUnicode_FromFormat("%R is listed more than once", key_item(keys, pos, 0));
        if (add_violation(out, k_repeated, keys, &pos, 1, msg) < 0)
            goto fail;
    }
    for (Py_ssize_t r = 0; r < PyTuple_GET_SIZE(breaks); r++) {
        Py_ssize_t pos = position(breaks, r, 1, n);
        if (pos < 0)
            goto fail;
        Py_ssize_t both[2] = {pos - 1, pos};
        PyObject *msg = PyUnicode_FromFormat("%R starts at %S, not after %S", key_item(keys, pos, 0),
                                             key_item(keys, pos, 1), key_item(keys, pos - 1, 1));
        if (add_violation(out, k_unsorted, keys, both, 2, msg) < 0)
            goto fail;
    }
    if (disjoint) /* no two events overlap, so no two input events do */
        return out;

    /* overlaps among the known, first-listed events: `overlapping_pairs` over their spans */
    at = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n + 1));
    skip = PyMem_Calloc((size_t)n + 1, 1);
    spans = PyMem_Malloc(sizeof(Span) * (size_t)(n + 1));
    pairs = PyMem_Malloc(sizeof(Pair) * MAX_REPORTED_PAIRS);
    if (at == NULL || skip == NULL || spans == NULL || pairs == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t r = 0; r < PyTuple_GET_SIZE(repeated); r++)
        skip[PyLong_AsSsize_t(PyTuple_GET_ITEM(repeated, r))] = 1; /* checked above */
    Py_ssize_t n_known = 0;
    for (Py_ssize_t pos = 0; pos < n; pos++)
        if (PyTuple_GET_ITEM(matches, pos) != Py_None && !skip[pos])
            at[n_known++] = pos; /* known[k] = at[k] */
    if (n_known < 2)
        goto done;
    for (Py_ssize_t k = 0; k < n_known; k++) {
        spans[k].start = PyLong_AsLongLong(PyTuple_GET_ITEM(starts, at[k]));
        spans[k].end = PyLong_AsLongLong(PyTuple_GET_ITEM(ends, at[k]));
        spans[k].index = k;
        if (PyErr_Occurred())
            goto fail;
    }
    qsort(spans, (size_t)n_known, sizeof(Span), span_order);
    Py_ssize_t n_pairs = 0;
    for (Py_ssize_t x = 0; x < n_known && n_pairs < MAX_REPORTED_PAIRS; x++)
        for (Py_ssize_t y = x + 1; y < n_known && n_pairs < MAX_REPORTED_PAIRS; y++) {
            if (spans[y].start >= spans[x].end)
                break;
            Py_ssize_t i = spans[x].index, j = spans[y].index;
            pairs[n_pairs].i = i < j ? i : j;
            pairs[n_pairs].j = i < j ? j : i;
            n_pairs++;
        }
    qsort(pairs, (size_t)n_pairs, sizeof(Pair), pair_order);
    for (Py_ssize_t p = 0; p < n_pairs; p++) {
        Py_ssize_t both[2] = {at[pairs[p].i], at[pairs[p].j]};
        PyObject *msg = PyUnicode_FromFormat("%R (%S-%S) overlaps %R (%S-%S)", key_item(keys, both[0], 0),
                                             key_item(keys, both[0], 1), key_item(keys, both[0], 2),
                                             key_item(keys, both[1], 0), key_item(keys, both[1], 1),
                                             key_item(keys, both[1], 2));
        if (add_violation(out, k_overlap, keys, both, 2, msg) < 0)
            goto fail;
    }
done:
    PyMem_Free(at);
    PyMem_Free(skip);
    PyMem_Free(spans);
    PyMem_Free(pairs);
    return out;
fail:
    Py_CLEAR(out);
    goto done;
}

/* -- score: the whole of `profiles.score` for the `default` profile ------------------------------------ */

/* Set by setup_score: the component names and weights, and the verdict values in this order. */
enum { V_FORMAT, V_TOO_FEW, V_UNKNOWN, V_UNSORTED, V_OVERLAP, V_VALID, N_VERDICTS };
static PyObject *component_names[3];
static double component_weights[3];
static PyObject *verdict_values[N_VERDICTS];
static PyObject *s_reward, *s_components, *s_verdict, *s_score_ratio, *s_optimal_score, *s_violations,
    *s_error, *s_spans, *k_truncated;

/* `checks.in_overlap(spans, inclusive=False)` over s[i], e[i]: flags[i] set when span i overlaps another.
   The spans are a problem's events, each ending after it starts, so the order of spans that start
   together changes no flag (each overlaps the others): `span_order`'s by (start, end) serves for
   Python's by start alone. */
static int in_overlap(const long long *s, const long long *e, Py_ssize_t n, unsigned char *flags) {
    memset(flags, 0, (size_t)n);
    int fast = 1;
    for (Py_ssize_t i = 0; i < n; i++)
        if (e[i] <= s[i] || (i > 0 && s[i] < e[i - 1])) {
            fast = 0;
            break;
        }
    if (fast)
        return 0;
    Span *order = PyMem_Malloc(sizeof(Span) * (size_t)(n + 1));
    if (order == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        order[i] = (Span){s[i], e[i], i};
    qsort(order, (size_t)n, sizeof(Span), span_order);
    long long max_end = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        Py_ssize_t i = order[k].index;
        if (k > 0 && s[i] < max_end)
            flags[i] = 1;
        if (k + 1 < n && s[order[k + 1].index] < e[i])
            flags[i] = 1;
        max_end = k == 0 ? e[i] : (e[i] > max_end ? e[i] : max_end);
    }
    PyMem_Free(order);
    return 0;
}

/* The spans and values of the parsed events (all known, none repeated: `matches` are their positions in the
   problem): s[i], e[i] = s[n + i], v[i] = s[2n + i], in one block at *out (PyMem_Free it). */
static int answer_spans(PyObject *problem, PyObject *matches, long long **out) {
    Py_ssize_t n = PyTuple_GET_SIZE(matches);
    PyObject *spans = PyObject_GetAttr(problem, s_spans), *values = NULL;
    long long *s = NULL;
    int rc = -1;
    if (spans == NULL || (values = PyObject_GetAttr(problem, s_values)) == NULL)
        goto done;
    if (!PyTuple_Check(spans) || !PyTuple_Check(values)) {
        PyErr_SetString(PyExc_TypeError, "a ProblemIndex has tuples `spans` and `values`");
        goto done;
    }
    s = PyMem_Malloc(sizeof(long long) * (size_t)(3 * n + 1));
    if (s == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    long long *e = s + n, *v = s + 2 * n;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t k = PyLong_AsSsize_t(PyTuple_GET_ITEM(matches, i));
        if (k == -1 && PyErr_Occurred())
            goto done;
        if (k < 0 || k >= PyTuple_GET_SIZE(spans) || k >= PyTuple_GET_SIZE(values)) {
            PyErr_SetString(PyExc_IndexError, "an event index outside `spans` or `values`");
            goto done;
        }
        PyObject *span = PyTuple_GET_ITEM(spans, k);
        if (!PyTuple_Check(span) || PyTuple_GET_SIZE(span) != 2) {
            PyErr_SetString(PyExc_TypeError, "a span is a (start, end) tuple");
            goto done;
        }
        s[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(span, 0));
        e[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(span, 1));
        v[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(values, k));
        if ((s[i] == -1 || e[i] == -1 || v[i] == -1) && PyErr_Occurred())
            goto done;
    }
    *out = s;
    s = NULL;
    rc = 0;
done:
    Py_XDECREF(spans);
    Py_XDECREF(values);
    PyMem_Free(s);
    return rc;
}

/* The `score` component's kept value over the parsed events (all known, none repeated): Σ values of the
   events not in an overlapping pair (`rewards._kept_value`, exclusive test). */
static int kept_value(PyObject *problem, PyObject *matches, long long *kept) {
    Py_ssize_t n = PyTuple_GET_SIZE(matches);
    long long *s = NULL;
    unsigned char *flags = PyMem_Malloc((size_t)n + 1);
    int rc = -1;
    if (flags == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (answer_spans(problem, matches, &s) < 0 || in_overlap(s, s + n, n, flags) < 0)
        goto done;
    long long sum = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!flags[i])
            sum += s[2 * n + i];
    *kept = sum;
    rc = 0;
done:
    PyMem_Free(s);
    PyMem_Free(flags);
    return rc;
}

static int end_order(const void *x, const void *y) {
    const Span *a = x, *b = y;
    if (a->end != b->end)
        return a->end < b->end ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* The `graded` profile's facts about the parsed events (all known, none repeated): the largest Σ value of
   pairwise non-overlapping events and the number of overlapping pairs, exclusive test
   (`profiles.best_subset_and_pairs`); O(n log n). */
static int graded_value(PyObject *problem, PyObject *matches, long long *best, long long *pairs) {
    Py_ssize_t n = PyTuple_GET_SIZE(matches);
    long long *s = NULL, *dp = NULL;
    Span *order = NULL;
    int rc = -1;
    if (answer_spans(problem, matches, &s) < 0)
        goto done;
    long long *e = s + n, *v = s + 2 * n;
    order = PyMem_Malloc(sizeof(Span) * (size_t)(n + 1));
    dp = PyMem_Malloc(sizeof(long long) * (size_t)(n + 1));
    if (order == NULL || dp == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* weighted interval scheduling: dp[j] is the best over the first j events by end */
    for (Py_ssize_t i = 0; i < n; i++)
        order[i] = (Span){s[i], e[i], i};
    qsort(order, (size_t)n, sizeof(Span), end_order);
    dp[0] = 0;
    for (Py_ssize_t j = 0; j < n; j++) {
        long long start = order[j].start;
        Py_ssize_t lo = 0, hi = j; /* the number of events among the first j that end by `start` */
        while (lo < hi) {
            Py_ssize_t mid = lo + (hi - lo) / 2;
            if (order[mid].end <= start)
                lo = mid + 1;
            else
                hi = mid;
        }
        long long take = dp[lo] + v[order[j].index];
        dp[j + 1] = take > dp[j] ? take : dp[j];
    }
    *best = dp[n];
    /* overlapping pairs: for each event by start, the later starters that start before it ends */
    qsort(order, (size_t)n, sizeof(Span), span_order);
    long long count = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        Py_ssize_t lo = k + 1, hi = n;
        while (lo < hi) {
            Py_ssize_t mid = lo + (hi - lo) / 2;
            if (order[mid].start < order[k].end)
                lo = mid + 1;
            else
                hi = mid;
        }
        count += lo - (k + 1);
    }
    *pairs = count;
    rc = 0;
done:
    PyMem_Free(s);
    PyMem_Free(order);
    PyMem_Free(dp);
    return rc;
}

/* `numerator / optimal_score` as Python divides (a float), into *out. */
static int ratio_of(PyObject *numerator, PyObject *optimal, double *out) {
    PyObject *q = PyNumber_TrueDivide(numerator, optimal);
    if (q == NULL)
        return -1;
    *out = PyFloat_AsDouble(q);
    Py_DECREF(q);
    return *out == -1.0 && PyErr_Occurred() ? -1 : 0;
}

/* The verdict of an analysis (`checks.verdict`), or -1 with an exception. */
static int verdict_of(PyObject *parsed, Py_ssize_t n, int known, int repeated, int sorted_, int disjoint) {
    if (PyTuple_GET_ITEM(parsed, 4) != Py_True)
        return V_FORMAT;
    if (n < 2)
        return V_TOO_FEW;
    if (!known || repeated)
        return V_UNKNOWN;
    if (!sorted_)
        return V_UNSORTED;
    if (!disjoint) {
        PyObject *starts = PyTuple_GET_ITEM(parsed, 1), *ends = PyTuple_GET_ITEM(parsed, 2);
        long long latest = PyLong_AsLongLong(PyTuple_GET_ITEM(ends, 0));
        if (latest == -1 && PyErr_Occurred())
            return -1;
        for (Py_ssize_t i = 1; i < n; i++) {
            long long s = PyLong_AsLongLong(PyTuple_GET_ITEM(starts, i)),
                      e = PyLong_AsLongLong(PyTuple_GET_ITEM(ends, i));
            if ((s == -1 || e == -1) && PyErr_Occurred())
                return -1;
            if (s < latest)
                return V_OVERLAP;
            if (e > latest)
                latest = e;
        }
    }
    return V_VALID;
}

/* `profiles.score_reference(completion, problem, profile, max_chars)`, the same dict to the bit, for the
   `default` profile (graded = 0) or the `graded` one (graded = 1): they differ only in the `score`
   component of an answer with overlapping events. */
static PyObject *score_with(PyObject *module, PyObject *const *args, Py_ssize_t nargs, int graded) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "score_strict() and score_graded() take a completion, a ProblemIndex and max_chars");
        return NULL;
    }
    if (verdict_values[0] == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "env_server.scoring._core.setup_score() was not called");
        return NULL;
    }
    PyObject *completion = args[0], *problem = args[1], *max_obj = args[2];
    if (!PyUnicode_Check(completion)) {
        PyErr_SetString(PyExc_TypeError, "score_strict() takes a str");
        return NULL;
    }
    Py_ssize_t length = PyUnicode_GET_LENGTH(completion), max_chars = -1;
    if (max_obj != Py_None) {
        max_chars = PyLong_AsSsize_t(max_obj);
        if (max_chars == -1 && PyErr_Occurred())
            return NULL;
        if (max_chars < 0) {
            PyErr_SetString(PyExc_ValueError, "max_chars is None or >= 0");
            return NULL;
        }
    }
    int truncated = max_obj != Py_None && length > max_chars;
    PyObject *text = NULL, *parsed = NULL, *a = NULL, *optimal = NULL, *components = NULL, *found = NULL;
    PyObject *result = NULL, *num = NULL;
    text = truncated ? PyUnicode_Substring(completion, 0, max_chars) : Py_NewRef(completion);
    parsed = text == NULL ? NULL : parse_strict(module, text);
    if (parsed == NULL)
        goto done;
    PyObject *pair[2] = {parsed, problem};
    a = analyse(module, pair, 2);
    optimal = a == NULL ? NULL : PyObject_GetAttr(problem, s_optimal_score);
    if (optimal == NULL)
        goto done;
    Py_ssize_t n = PyTuple_GET_SIZE(PyTuple_GET_ITEM(parsed, 0));
    int known = PyTuple_GET_ITEM(a, 5) == Py_True, repeated = PyTuple_GET_SIZE(PyTuple_GET_ITEM(a, 2)) > 0,
        sorted_ = PyTuple_GET_ITEM(a, 6) == Py_True, disjoint = PyTuple_GET_ITEM(a, 7) == Py_True;
    PyObject *value = PyTuple_GET_ITEM(a, 8);

    /* the components: format, order, score (rewards.format_component, order_component, score_component) */
    double fractions[3] = {PyTuple_GET_ITEM(parsed, 3) == Py_True ? 1.0 : 0.0, n >= 2 && sorted_ ? 1.0 : 0.0, 0.0};
    if (n >= 2 && known && !repeated) {
        if (disjoint) {
            if (ratio_of(value, optimal, &fractions[2]) < 0)
                goto done;
        } else if (!graded) {
            long long kept;
            if (kept_value(problem, PyTuple_GET_ITEM(a, 1), &kept) < 0 || (num = PyLong_FromLongLong(kept)) == NULL ||
                ratio_of(num, optimal, &fractions[2]) < 0)
                goto done;
        } else { /* best / optimal_score * 0.5 ** pairs: a power of two, exact, 0.0 past 2 ** -1074 as in Python */
            long long best, pairs;
            if (graded_value(problem, PyTuple_GET_ITEM(a, 1), &best, &pairs) < 0 ||
                (num = PyLong_FromLongLong(best)) == NULL || ratio_of(num, optimal, &fractions[2]) < 0)
                goto done;
            fractions[2] *= ldexp(1.0, pairs > 2000 ? -2000 : -(int)pairs);
        }
    }
    components = PyDict_New();
    if (components == NULL)
        goto done;
    double reward = 0.0;
    for (int c = 0; c < 3; c++) {
        double points = component_weights[c] * fractions[c];
        reward += points;
        PyObject *x = PyFloat_FromDouble(points);
        if (x == NULL || PyDict_SetItem(components, component_names[c], x) < 0) {
            Py_XDECREF(x);
            goto done;
        }
        Py_DECREF(x);
    }

    int v = verdict_of(parsed, n, known, repeated, sorted_, disjoint);
    if (v < 0)
        goto done;
    double ratio = 0.0;
    if (v == V_VALID) {
        if (disjoint)
            ratio = fractions[2]; /* already `value / optimal_score`: the score component's fraction */
        else if (ratio_of(value, optimal, &ratio) < 0)
            goto done;
    }
    found = v == V_VALID ? PyList_New(0) : violations(module, a);
    if (found == NULL)
        goto done;
    if (truncated) {
        PyObject *none1 = PyList_New(0), *none2 = PyList_New(0);
        PyObject *message = PyUnicode_FromFormat("completion has %zd characters; scored on the first %S", length, max_obj);
        PyObject *item = PyDict_New();
        int bad = none1 == NULL || none2 == NULL || message == NULL || item == NULL ||
                  PyDict_SetItem(item, s_type, k_truncated) < 0 || PyDict_SetItem(item, s_indices, none1) < 0 ||
                  PyDict_SetItem(item, s_events, none2) < 0 || PyDict_SetItem(item, s_message, message) < 0 ||
                  PyList_Insert(found, 0, item) < 0;
        Py_XDECREF(none1);
        Py_XDECREF(none2);
        Py_XDECREF(message);
        Py_XDECREF(item);
        if (bad)
            goto done;
    }
    result = PyDict_New();
    if (result == NULL)
        goto done;
    PyObject *reward_obj = PyFloat_FromDouble(reward), *ratio_obj = PyFloat_FromDouble(ratio);
    int bad = reward_obj == NULL || ratio_obj == NULL || PyDict_SetItem(result, s_reward, reward_obj) < 0 ||
              PyDict_SetItem(result, s_components, components) < 0 ||
              PyDict_SetItem(result, s_verdict, verdict_values[v]) < 0 ||
              PyDict_SetItem(result, s_score_ratio, ratio_obj) < 0 ||
              PyDict_SetItem(result, s_optimal_score, optimal) < 0 ||
              PyDict_SetItem(result, s_violations, found) < 0 || PyDict_SetItem(result, s_error, Py_None) < 0;
    Py_XDECREF(reward_obj);
    Py_XDECREF(ratio_obj);
    if (bad)
        Py_CLEAR(result);
done:
    Py_XDECREF(text);
    Py_XDECREF(parsed);
    Py_XDECREF(a);
    Py_XDECREF(optimal);
    Py_XDECREF(components);
    Py_XDECREF(found);
    Py_XDECREF(num);
    return result;
}

/* score_strict(completion, problem, max_chars): the `default` profile's `score`. */
static PyObject *score_strict(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    return score_with(module, args, nargs, 0);
}

/* score_graded(completion, problem, max_chars): the `graded` profile's `score`. */
static PyObject *score_graded(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    return score_with(module, args, nargs, 1);
}

/* -- set-up ------------------------------------------------------------------------------------------ */

static int tuple_type(PyObject *type) {
    if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "a tuple subclass is needed");
        return 0;
    }
    return 1;
}

/* setup_parse(Parsed, no_events): what parse_strict returns. */
static PyObject *setup_parse(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *type, *empty;
    if (!PyArg_ParseTuple(args, "OO", &type, &empty) || !tuple_type(type))
        return NULL;
    Py_XSETREF(parsed_type, (PyTypeObject *)Py_NewRef(type));
    Py_XSETREF(no_events, Py_NewRef(empty));
    Py_RETURN_NONE;
}

/* setup_analyse(Analysis): what analyse returns. */
static PyObject *setup_analyse(PyObject *module, PyObject *type) {
    (void)module;
    if (!tuple_type(type))
        return NULL;
    Py_XSETREF(analysis_type, (PyTypeObject *)Py_NewRef(type));
    Py_RETURN_NONE;
}

/* setup_score(names, weights, verdicts): the `default` profile's component names and weights (format,
   order, score) and the verdict values (format_error, too_few_events, unknown_event, unsorted, overlap,
   valid). */
static PyObject *setup_score(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *names, *weights, *verdicts;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyTuple_Type, &names, &PyTuple_Type, &weights, &PyTuple_Type, &verdicts))
        return NULL;
    if (PyTuple_GET_SIZE(names) != 3 || PyTuple_GET_SIZE(weights) != 3 || PyTuple_GET_SIZE(verdicts) != N_VERDICTS) {
        PyErr_SetString(PyExc_ValueError, "3 names, 3 weights and 6 verdicts");
        return NULL;
    }
    double w[3];
    for (int c = 0; c < 3; c++) {
        w[c] = PyFloat_AsDouble(PyTuple_GET_ITEM(weights, c));
        if (w[c] == -1.0 && PyErr_Occurred())
            return NULL;
        if (!PyUnicode_Check(PyTuple_GET_ITEM(names, c))) {
            PyErr_SetString(PyExc_TypeError, "component names are str");
            return NULL;
        }
    }
    for (int v = 0; v < N_VERDICTS; v++)
        if (!PyUnicode_Check(PyTuple_GET_ITEM(verdicts, v))) {
            PyErr_SetString(PyExc_TypeError, "verdicts are str");
            return NULL;
        }
    for (int c = 0; c < 3; c++) {
        Py_XSETREF(component_names[c], Py_NewRef(PyTuple_GET_ITEM(names, c)));
        component_weights[c] = w[c];
    }
    for (int v = 0; v < N_VERDICTS; v++)
        Py_XSETREF(verdict_values[v], Py_NewRef(PyTuple_GET_ITEM(verdicts, v)));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"parse_strict", parse_strict, METH_O, "The `default` profile's reading of a completion (a `Parsed`)."},
    {"analyse", (PyCFunction)(void (*)(void))analyse, METH_FASTCALL,
     "analyse(parsed, problem): the `Analysis` of a parsed completion."},
    {"violations", violations, METH_O, "violations(analysis): every rule the schedule breaks (wire dicts)."},
    {"setup_parse", setup_parse, METH_VARARGS, "setup_parse(Parsed, no_events): what parse_strict returns."},
    {"setup_analyse", setup_analyse, METH_O, "setup_analyse(Analysis): what analyse returns."},
    {"score_strict", (PyCFunction)(void (*)(void))score_strict, METH_FASTCALL,
     "score_strict(completion, problem, max_chars): rewards.score under the `default` profile."},
    {"score_graded", (PyCFunction)(void (*)(void))score_graded, METH_FASTCALL,
     "score_graded(completion, problem, max_chars): rewards.score under the `graded` profile."},
    {"setup_score", setup_score, METH_VARARGS,
     "setup_score(names, weights, verdicts): the `default` profile's components and the verdict values."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_core", "parse_strict and analyse in C (see _core.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__core(void) {
    for (int code = 0; code < N_TIMES; code++) {
        char buf[6] = {(char)('0' + code / 1000), (char)('0' + code / 100 % 10), ':',
                       (char)('0' + code / 10 % 10), (char)('0' + code % 10), 0};
        hhmm[code] = PyUnicode_InternFromString(buf);
        minutes[code] = PyLong_FromLong((code / 100) * 60 + code % 100);
        if (hhmm[code] == NULL || minutes[code] == NULL)
            return NULL;
    }
    s_open = PyUnicode_InternFromString("<schedule>");
    s_close = PyUnicode_InternFromString("</schedule>");
    s_event = PyUnicode_InternFromString("<event>");
    s_exact = PyUnicode_InternFromString("exact");
    s_values = PyUnicode_InternFromString("values");
    if (s_open == NULL || s_close == NULL || s_event == NULL || s_exact == NULL ||
        s_values == NULL)
        return NULL;
    PyObject **names[] = {&s_type, &s_indices, &s_events, &s_message, &s_name, &s_start, &s_end,
                          &k_format, &k_too_few, &k_unknown, &k_repeated, &k_unsorted, &k_overlap, &m_format,
                          &s_reward, &s_components, &s_verdict, &s_score_ratio, &s_optimal_score,
                          &s_violations, &s_error, &s_spans, &k_truncated};
    const char *texts[] = {"type", "indices", "events", "message", "name", "start", "end",
                           "format", "too_few_events", "unknown_event", "repeated_event", "unsorted", "overlap",
                           "no <schedule> block with a well-formed event",
                           "reward", "components", "verdict", "score_ratio", "optimal_score",
                           "violations", "error", "spans", "truncated"};
    for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++)
        if ((*names[k] = PyUnicode_InternFromString(texts[k])) == NULL)
            return NULL;
    return PyModule_Create(&module_def);
}

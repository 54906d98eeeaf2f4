/* The `default` profile's reading of a completion (`env_server.parsing.parse_strict`), in C.
 *
 * `parse_strict(text)` here returns what the Python `parsing._parse_strict` returns for every string:
 * the same `Parsed` (keys, starts, ends, format_ok, has_schedule), compared field by field with the
 * Python reference on generated and adversarial text in tests/env_server/test_strict_native.py. The
 * Python function is the specification; this is the same algorithm without the interpreter:
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
 * Times are taken from tables built once: every "DD:DD" string and its minutes (h * 60 + m).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define N_TIMES 10000 /* "00:00" .. "99:99" */

static PyObject *hhmm[N_TIMES];   /* the time strings */
static PyObject *minutes[N_TIMES]; /* their minutes */
static PyObject *s_open, *s_close, *s_event, *s_think;
static PyTypeObject *parsed_type; /* env_server.parsing.Parsed */
static PyObject *no_events;       /* env_server.parsing._NO_EVENTS */

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
    skip_space(t, &q);
    if (!literal(t, &q, "<start>", 7))
        return 0;
    int start = time_code(t, &q);
    if (start < 0 || !literal(t, &q, "</start>", 8))
        return 0;
    skip_space(t, &q);
    if (!literal(t, &q, "<end>", 5))
        return 0;
    int stop = time_code(t, &q);
    if (stop < 0 || !literal(t, &q, "</end>", 6))
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

/* `_strict_frame_at(text, open_, close)`; -1 on error. */
static int frame_ok(PyObject *text, const Text *block, Py_ssize_t length, Py_ssize_t open_, Py_ssize_t close) {
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
    Py_ssize_t body = pos, end;
    for (;;) {
        Py_ssize_t i = PyUnicode_Find(text, s_think, pos, open_, 1);
        if (i == -2)
            return -1;
        if (i < 0)
            return 0;
        if (READ(t, i - 1) == '<')
            return 0; /* `<think>` inside the reasoning */
        if (READ(t, i - 1) == '/' && READ(t, i - 2) == '<') {
            end = i - 2;
            break;
        }
        pos = i + 1;
    }
    if (end == body || !all_space(t, end + 8, open_))
        return 0;
    return !all_space(t, body, end); /* blank reasoning */
}

static PyObject *parse_strict(PyObject *module, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "parse_strict() takes a str");
        return NULL;
    }
    if (parsed_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "env_server._strict.setup() was not called");
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
    int format_ok = 0;
    if (only_events) {
        format_ok = frame_ok(text, &t, length, open_, close);
        if (format_ok < 0)
            goto done;
    }
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

/* setup(Parsed, no_events): the result type and the value for a text without events. */
static PyObject *setup(PyObject *module, PyObject *args) {
    PyObject *type, *empty;
    if (!PyArg_ParseTuple(args, "O!O", &PyType_Type, &type, &empty))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "setup() needs a tuple subclass");
        return NULL;
    }
    Py_XSETREF(parsed_type, (PyTypeObject *)Py_NewRef(type));
    Py_XSETREF(no_events, Py_NewRef(empty));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"parse_strict", parse_strict, METH_O, "The `default` profile's reading of a completion (a `Parsed`)."},
    {"setup", setup, METH_VARARGS, "setup(Parsed, no_events): what parse_strict returns."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_strict", "env_server.parsing.parse_strict in C (see _strict.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__strict(void) {
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
    s_think = PyUnicode_InternFromString("think>");
    if (s_open == NULL || s_close == NULL || s_event == NULL || s_think == NULL)
        return NULL;
    return PyModule_Create(&module_def);
}

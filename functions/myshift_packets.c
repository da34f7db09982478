/* myshift_packets: the hot loop of the text reader (myshift.source.split_rows), compiled.

   split(buf, pos, seq, max_rows) -> (lines, count, pos, seq, status) takes the row
   packets of a one-column MySQL text result from buf[pos:], exactly as the Python
   reference `myshift.source.split_rows_python` does (tests hold the two to the same
   results): the values of up to max_rows complete rows, each followed by '\n'; where
   the next packet starts and the sequence number it must carry; why it stopped
   (0 more bytes needed or max_rows taken, 1 EOF packet, 2 error packet, 3 NULL value,
   4 packet of 16 MB or more, 5 packet out of sequence: the packet at pos).

   Limited API (abi3), libc only: one build serves every Python >= 3.11, and
   scripts/build_layer.py cross-compiles it for Lambda without Docker. */
#define Py_LIMITED_API 0x030B0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

enum { MORE = 0, END = 1, ERROR = 2, NULL_VALUE = 3, OVERSIZE = 4, SEQUENCE = 5 };

static PyObject *split(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, max_rows;
    int seq;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nin", &view, &pos, &seq, &max_rows)) return NULL;
    if (pos < 0 || pos > view.len || seq < 0 || seq > 255) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pos or seq out of range");
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)view.buf;
    const Py_ssize_t end = view.len;
    Py_ssize_t p = pos, total = 0, count = 0;
    int s = seq, status = MORE;

    /* First pass: where the rows are and how long their lines are. */
    while (count < max_rows && p + 4 <= end) {
        const Py_ssize_t length = b[p] | (b[p + 1] << 8) | (b[p + 2] << 16);
        const Py_ssize_t stop = p + 4 + length;
        Py_ssize_t skip;
        if (stop > end) break;
        if (b[p + 3] != s) { status = SEQUENCE; break; }
        if (length == 0xFFFFFF) { status = OVERSIZE; break; }
        if (length == 0) { status = NULL_VALUE; break; }
        const unsigned char first = b[p + 4];
        if (first < 0xFB) skip = 1;
        else if (first == 0xFC) skip = 3;
        else if (first == 0xFD) skip = 4;
        else if (first == 0xFE && length < 9) { status = END; break; }
        else if (first == 0xFF) { status = ERROR; break; }
        else { status = NULL_VALUE; break; }
        if (skip > length) { status = NULL_VALUE; break; }
        total += length - skip + 1;
        count++;
        s = (s + 1) & 0xFF;
        p = stop;
    }

    /* Second pass: copy them into one bytes object. */
    PyObject *lines = PyBytes_FromStringAndSize(NULL, total);
    if (lines == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    char *out = PyBytes_AsString(lines);
    Py_ssize_t q = pos;
    for (Py_ssize_t n = 0; n < count; n++) {
        const Py_ssize_t length = b[q] | (b[q + 1] << 8) | (b[q + 2] << 16);
        const unsigned char first = b[q + 4];
        const Py_ssize_t skip = first < 0xFB ? 1 : (first == 0xFC ? 3 : 4);
        memcpy(out, b + q + 4 + skip, (size_t)(length - skip));
        out += length - skip;
        *out++ = '\n';
        q += 4 + length;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(Nnnii)", lines, count, p, s, status);
}

static PyMethodDef methods[] = {
    {"split", split, METH_VARARGS,
     "split(buf, pos, seq, max_rows) -> (lines, count, pos, seq, status)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "myshift_packets", "The text reader's packet splitter.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_myshift_packets(void) { return PyModule_Create(&module); }

//! Where cairnctl writes and reads: stdout, stderr and stdin behind one handle, so commands
//! can be run against buffers in tests. Like Go's `fmt.Print`, writes ignore errors (a
//! closed stdout does not change the exit code), but every write is flushed at once so
//! interactive prompts appear before input is read.

use std::io::{BufRead, Write};

/// The process's standard streams (or test buffers).
pub struct Console<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    input: &'a mut dyn BufRead,
}

impl<'a> Console<'a> {
    /// A console over the given streams.
    pub fn new(
        out: &'a mut dyn Write,
        err: &'a mut dyn Write,
        input: &'a mut dyn BufRead,
    ) -> Console<'a> {
        Console { out, err, input }
    }

    /// Writes text to stdout.
    pub fn out(&mut self, text: &str) {
        self.out_bytes(text.as_bytes());
    }

    /// Writes raw bytes to stdout (values need not be UTF-8).
    pub fn out_bytes(&mut self, bytes: &[u8]) {
        // Output errors are ignored, as etcdctl's fmt.Print ignores them.
        let _ignored = self.out.write_all(bytes).and_then(|()| self.out.flush());
    }

    /// Writes text to stderr.
    pub fn err(&mut self, text: &str) {
        let _ignored = self
            .err
            .write_all(text.as_bytes())
            .and_then(|()| self.err.flush());
    }

    /// stdin.
    pub fn input(&mut self) -> &mut dyn BufRead {
        self.input
    }
}

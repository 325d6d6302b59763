//! OpenSSH's escape sequences on a terminal session, recognised only right after a newline (or
//! at the start): `~.` disconnects, `~?` prints the list, `~~` sends one `~`; a `~` followed by
//! anything else is sent as typed.

/// What the user asked for besides the bytes to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `~.`
    Disconnect,
    /// `~?`
    Help,
}

/// The help `~?` prints (raw terminal: `\r\n`).
pub const HELP: &str =
    "\r\nSupported escape sequences:\r\n  ~.  - disconnect\r\n  ~?  - this message\r\n  ~~  - send the escape character\r\n";

/// Scans typed input for escapes.
#[derive(Debug)]
pub struct Escapes {
    at_line_start: bool,
    tilde: bool,
}

impl Default for Escapes {
    fn default() -> Self {
        Escapes { at_line_start: true, tilde: false }
    }
}

impl Escapes {
    /// The bytes of `input` to send, and the actions found in order (input after a disconnect
    /// is dropped).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, Vec<Action>) {
        let mut out = Vec::with_capacity(input.len());
        let mut actions = Vec::new();
        for &b in input {
            if self.tilde {
                self.tilde = false;
                match b {
                    b'.' => {
                        actions.push(Action::Disconnect);
                        return (out, actions);
                    }
                    b'?' => {
                        actions.push(Action::Help);
                        self.at_line_start = false;
                        continue;
                    }
                    b'~' => out.push(b'~'),
                    _ => out.extend_from_slice(&[b'~', b]),
                }
                self.at_line_start = b == b'\r' || b == b'\n';
                continue;
            }
            if self.at_line_start && b == b'~' {
                self.tilde = true;
                continue;
            }
            out.push(b);
            self.at_line_start = b == b'\r' || b == b'\n';
        }
        (out, actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_after_a_newline() {
        let mut e = Escapes::default();
        assert_eq!(e.feed(b"~."), (vec![], vec![Action::Disconnect]), "at the start");
        let mut e = Escapes::default();
        assert_eq!(e.feed(b"ls ~.\r"), (b"ls ~.\r".to_vec(), vec![]), "mid-line: typed");
        assert_eq!(e.feed(b"~"), (vec![], vec![]), "held after a newline");
        assert_eq!(e.feed(b"."), (vec![], vec![Action::Disconnect]), "across reads");
        let mut e = Escapes::default();
        assert_eq!(e.feed(b"~?"), (vec![], vec![Action::Help]));
        assert_eq!(e.feed(b"\r~~x\r~a"), (b"\r~x\r~a".to_vec(), vec![]), "~~ is one ~; ~a is sent as typed");
        assert_eq!(e.feed(b"\n~.rest"), (b"\n".to_vec(), vec![Action::Disconnect]));
        let mut e = Escapes::default();
        assert_eq!(e.feed(b"~?\r~."), (b"\r".to_vec(), vec![Action::Help, Action::Disconnect]), "both, in order");
    }
}

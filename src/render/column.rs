//! A table column: its heading, width and alignment. Tools declare their columns with it; the
//! table sink pads the cells to it.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One table column. The last column of a row is never padded (it holds free text: ARGS, PATH).
#[derive(Clone, Debug)]
pub struct Column {
    pub name: &'static str,
    pub width: usize,
    pub align: Align,
}

impl Column {
    pub fn left(name: &'static str, width: usize) -> Self {
        Column {
            name,
            width,
            align: Align::Left,
        }
    }
    pub fn right(name: &'static str, width: usize) -> Self {
        Column {
            name,
            width,
            align: Align::Right,
        }
    }

    /// A process or thread id (PID, PPID, TID), as wide in every tool: 7 digits hold the
    /// largest pid_max (4194304).
    pub fn id(name: &'static str) -> Self {
        Column::right(name, 7)
    }

    /// A task's name (COMM, PCOMM), as wide in every tool: the kernel keeps 15 bytes.
    pub fn comm(name: &'static str) -> Self {
        Column::left(name, 16)
    }
}

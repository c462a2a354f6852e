mod debug_link;
mod function;
mod lines;
mod location;
mod range;
mod reader;
mod resolver;
mod unit;
mod units;


pub(crate) use self::resolver::DwarfResolver;

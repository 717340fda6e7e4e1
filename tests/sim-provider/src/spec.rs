//! A small description of an SDKv2-style resource schema, and the generic planning built on it.
//!
//! bpg/proxmox is written with the Terraform plugin SDKv2: nested blocks are lists, attributes carry
//! `Default`s and some are `ForceNew`. The plugin protocol knows none of that, so this module keeps those
//! facts next to the schema and does what the SDK would do at plan time: fill defaults where the
//! configuration is null, keep prior values of computed attributes, mark unknown what only apply can know,
//! and report the attributes whose change forces a replacement.

use std::collections::{BTreeMap, HashMap};

use tf_provider::AttributePath;
use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, NestedBlock, Schema,
};
use tf_provider::value::ValueAny;

/// The type of an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Str,
    /// A whole number.
    Num,
    /// A boolean.
    Bool,
    /// A list of strings.
    StrList,
}

/// Who may set an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The configuration must set it.
    Required,
    /// The configuration may set it; null stays null.
    Optional,
    /// The provider sets it; the configuration may too (also used for attributes with a default).
    OptionalComputed,
    /// Only the provider sets it.
    Computed,
}

/// One attribute of a block.
#[derive(Debug, Clone)]
pub struct AttrSpec {
    /// Attribute name.
    pub name: &'static str,
    /// Attribute type.
    pub kind: Kind,
    /// Who sets it.
    pub mode: Mode,
    /// Value planned when the configuration leaves it null (SDKv2 `Default`).
    pub default: Option<ValueAny>,
    /// A change replaces the resource (SDKv2 `ForceNew`).
    pub force_new: bool,
    /// Hidden in Terraform's output.
    pub sensitive: bool,
    /// A list whose order does not matter (SDKv2 `SuppressIfListsAreEqualIgnoringOrder`): a planned
    /// value equal to the prior one but for order keeps the prior one.
    pub unordered: bool,
}

/// A nested block, always a list as in SDKv2.
#[derive(Debug, Clone)]
pub struct BlockSpec {
    /// Block name (the root block's name is unused).
    pub name: &'static str,
    /// At most this many blocks (`MaxItems`), 0 for no limit.
    pub max_items: usize,
    /// Adding or removing the block replaces the resource (its attributes carry their own `ForceNew`).
    pub force_new: bool,
    /// Attributes.
    pub attrs: Vec<AttrSpec>,
    /// Nested blocks.
    pub blocks: Vec<BlockSpec>,
}

fn attr(name: &'static str, kind: Kind, mode: Mode) -> AttrSpec {
    AttrSpec {
        name,
        kind,
        mode,
        default: None,
        force_new: false,
        sensitive: false,
        unordered: false,
    }
}

/// A required attribute.
pub fn required(name: &'static str, kind: Kind) -> AttrSpec {
    attr(name, kind, Mode::Required)
}

/// An optional attribute without default.
pub fn optional(name: &'static str, kind: Kind) -> AttrSpec {
    attr(name, kind, Mode::Optional)
}

/// An optional attribute the provider fills in when the configuration leaves it null.
pub fn optional_computed(name: &'static str, kind: Kind) -> AttrSpec {
    attr(name, kind, Mode::OptionalComputed)
}

/// An attribute only the provider sets.
pub fn computed(name: &'static str, kind: Kind) -> AttrSpec {
    attr(name, kind, Mode::Computed)
}

/// An optional string with a default.
pub fn default_str(name: &'static str, value: &str) -> AttrSpec {
    let mut a = attr(name, Kind::Str, Mode::OptionalComputed);
    a.default = Some(ValueAny::String(value.to_owned()));
    a
}

/// An optional number with a default.
pub fn default_num(name: &'static str, value: i64) -> AttrSpec {
    let mut a = attr(name, Kind::Num, Mode::OptionalComputed);
    a.default = Some(ValueAny::Number(value));
    a
}

/// An optional boolean with a default.
pub fn default_bool(name: &'static str, value: bool) -> AttrSpec {
    let mut a = attr(name, Kind::Bool, Mode::OptionalComputed);
    a.default = Some(ValueAny::Bool(value));
    a
}

impl AttrSpec {
    /// Mark the attribute `ForceNew`.
    pub fn force_new(mut self) -> Self {
        self.force_new = true;
        self
    }

    /// Mark the attribute sensitive.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Suppress differences of order only (the attribute becomes optional and computed, so the plan may
    /// keep the prior order).
    pub fn unordered(mut self) -> Self {
        self.unordered = true;
        self.mode = Mode::OptionalComputed;
        self
    }
}

/// A nested block (list nesting).
pub fn block(
    name: &'static str,
    max_items: usize,
    attrs: Vec<AttrSpec>,
    blocks: Vec<BlockSpec>,
) -> BlockSpec {
    BlockSpec {
        name,
        max_items,
        force_new: false,
        attrs,
        blocks,
    }
}

impl BlockSpec {
    /// Mark the block `ForceNew`: adding or removing it replaces the resource.
    pub fn force_new(mut self) -> Self {
        self.force_new = true;
        self
    }

    /// The protocol schema of this block.
    pub fn to_block(&self, description: &str) -> Block {
        let attributes = self
            .attrs
            .iter()
            .map(|a| {
                let attr_type = match a.kind {
                    Kind::Str => AttributeType::String,
                    Kind::Num => AttributeType::Number,
                    Kind::Bool => AttributeType::Bool,
                    Kind::StrList => AttributeType::List(Box::new(AttributeType::String)),
                };
                let constraint = match a.mode {
                    Mode::Required => AttributeConstraint::Required,
                    Mode::Optional => AttributeConstraint::Optional,
                    Mode::OptionalComputed => AttributeConstraint::OptionalComputed,
                    Mode::Computed => AttributeConstraint::Computed,
                };
                let attribute = Attribute {
                    attr_type,
                    description: Description::plain(a.name),
                    constraint,
                    sensitive: a.sensitive,
                    deprecated: false,
                };
                (a.name.to_owned(), attribute)
            })
            .collect::<HashMap<_, _>>();
        let blocks = self
            .blocks
            .iter()
            .map(|b| {
                let inner = b.to_block(b.name);
                let nested = if b.max_items == 1 {
                    NestedBlock::Optional(inner)
                } else {
                    NestedBlock::List(inner)
                };
                (b.name.to_owned(), nested)
            })
            .collect::<HashMap<_, _>>();
        Block {
            version: 1,
            attributes,
            blocks,
            description: Description::plain(description),
            deprecated: false,
        }
    }

    /// The protocol schema of a resource whose root block is `self`.
    pub fn to_schema(&self, description: &str) -> Schema {
        Schema {
            version: 0,
            block: self.to_block(description),
        }
    }

    /// An object with every attribute null and every block an empty list (an import's starting point).
    pub fn skeleton(&self) -> ValueAny {
        let mut map = BTreeMap::new();
        for a in &self.attrs {
            map.insert(a.name.to_owned(), ValueAny::Null);
        }
        for b in &self.blocks {
            map.insert(b.name.to_owned(), ValueAny::List(Vec::new()));
        }
        ValueAny::Map(map)
    }

    /// Plan this block: the configuration's values, defaults where it is null, prior values of
    /// computed attributes, unknown where only apply can tell. `prior` is `None` on create.
    pub fn plan(&self, config: &ValueAny, prior: Option<&ValueAny>) -> ValueAny {
        let mut out = BTreeMap::new();
        for a in &self.attrs {
            let c = field(config, a.name);
            let prior_value = prior.map(|p| field(p, a.name));
            let planned = match c {
                ValueAny::Null if a.unordered => ValueAny::Null,
                ValueAny::List(_)
                    if a.unordered && prior_value.is_some_and(|p| same_items(p, c)) =>
                {
                    prior_value.cloned().unwrap_or_default()
                }
                ValueAny::Null => match (&a.default, a.mode) {
                    (Some(d), _) => d.clone(),
                    (None, Mode::Computed | Mode::OptionalComputed) => match prior_value {
                        Some(p) if !matches!(p, ValueAny::Null) => p.clone(),
                        _ => ValueAny::Unknown,
                    },
                    (None, _) => ValueAny::Null,
                },
                other => other.clone(),
            };
            out.insert(a.name.to_owned(), planned);
        }
        for b in &self.blocks {
            let planned = match field(config, b.name) {
                ValueAny::List(items) => {
                    let prior_items = prior.map(|p| field(p, b.name));
                    ValueAny::List(
                        items
                            .iter()
                            .enumerate()
                            .map(|(i, item)| {
                                let p = prior_items.and_then(|l| element(l, i));
                                b.plan(item, p)
                            })
                            .collect(),
                    )
                }
                other => other.clone(),
            };
            out.insert(b.name.to_owned(), planned);
        }
        ValueAny::Map(out)
    }

    /// Paths of `ForceNew` attributes and blocks whose planned value differs from the prior one.
    pub fn replace_paths(&self, prior: &ValueAny, planned: &ValueAny) -> Vec<AttributePath> {
        let mut paths = Vec::new();
        self.collect_replace(prior, planned, &AttributePath::root(), &mut paths);
        paths
    }

    fn collect_replace(
        &self,
        prior: &ValueAny,
        planned: &ValueAny,
        at: &AttributePath,
        paths: &mut Vec<AttributePath>,
    ) {
        for a in self.attrs.iter().filter(|a| a.force_new) {
            if field(prior, a.name) != field(planned, a.name) {
                paths.push(at.clone().attribute(a.name));
            }
        }
        for b in &self.blocks {
            let (p, n) = (field(prior, b.name), field(planned, b.name));
            if b.force_new && list_len(p) != list_len(n) {
                paths.push(at.clone().attribute(b.name));
                continue;
            }
            if let (ValueAny::List(pl), ValueAny::List(nl)) = (p, n) {
                for (i, (pi, ni)) in pl.iter().zip(nl.iter()).enumerate() {
                    let step = at
                        .clone()
                        .attribute(b.name)
                        .index(i64::try_from(i).unwrap_or(i64::MAX));
                    b.collect_replace(pi, ni, &step, paths);
                }
            }
        }
    }
}

const NULL: ValueAny = ValueAny::Null;

/// Two lists with the same items, in any order.
pub fn same_items(a: &ValueAny, b: &ValueAny) -> bool {
    match (a, b) {
        (ValueAny::List(x), ValueAny::List(y)) => {
            let key = |v: &ValueAny| v.json();
            let mut x: Vec<String> = x.iter().map(key).collect();
            let mut y: Vec<String> = y.iter().map(key).collect();
            x.sort();
            y.sort();
            x == y
        }
        _ => false,
    }
}

/// The attribute `name` of an object, null when absent or when `v` is no object.
pub fn field<'v>(v: &'v ValueAny, name: &str) -> &'v ValueAny {
    match v {
        ValueAny::Map(m) => m.get(name).unwrap_or(&NULL),
        _ => &NULL,
    }
}

/// Element `i` of a list, if any.
pub fn element(v: &ValueAny, i: usize) -> Option<&ValueAny> {
    match v {
        ValueAny::List(l) => l.get(i),
        _ => None,
    }
}

/// Length of a list value (0 for anything else).
pub fn list_len(v: &ValueAny) -> usize {
    match v {
        ValueAny::List(l) => l.len(),
        _ => 0,
    }
}

/// Follow a dotted path (`memory.0.dedicated`): names for objects, numbers for lists.
pub fn get<'v>(v: &'v ValueAny, path: &str) -> &'v ValueAny {
    let mut cur = v;
    for step in path.split('.') {
        cur = match (cur, step.parse::<usize>()) {
            (ValueAny::List(l), Ok(i)) => l.get(i).unwrap_or(&NULL),
            _ => field(cur, step),
        };
    }
    cur
}

/// The string at `path`, if known and not null.
pub fn get_str<'v>(v: &'v ValueAny, path: &str) -> Option<&'v str> {
    match get(v, path) {
        ValueAny::String(s) => Some(s),
        _ => None,
    }
}

/// The number at `path`, if known and not null.
pub fn get_num(v: &ValueAny, path: &str) -> Option<i64> {
    match get(v, path) {
        ValueAny::Number(n) => Some(*n),
        _ => None,
    }
}

/// The boolean at `path`, if known and not null.
pub fn get_bool(v: &ValueAny, path: &str) -> Option<bool> {
    match get(v, path) {
        ValueAny::Bool(b) => Some(*b),
        _ => None,
    }
}

/// The strings of the list at `path` (unknown or null elements skipped).
pub fn get_strs(v: &ValueAny, path: &str) -> Option<Vec<String>> {
    match get(v, path) {
        ValueAny::List(l) => Some(
            l.iter()
                .filter_map(|e| match e {
                    ValueAny::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Set the value at a dotted path; objects on the way must exist, the last name is inserted.
pub fn set(v: &mut ValueAny, path: &str, value: ValueAny) {
    let (head, last) = match path.rsplit_once('.') {
        Some((h, l)) => (Some(h), l),
        None => (None, path),
    };
    let mut cur = v;
    if let Some(head) = head {
        for step in head.split('.') {
            cur = match (cur, step.parse::<usize>()) {
                (ValueAny::List(l), Ok(i)) => match l.get_mut(i) {
                    Some(e) => e,
                    None => return,
                },
                (ValueAny::Map(m), _) => match m.get_mut(step) {
                    Some(e) => e,
                    None => return,
                },
                _ => return,
            };
        }
    }
    if let ValueAny::Map(m) = cur {
        m.insert(last.to_owned(), value);
    }
}

/// A string value.
pub fn s(value: impl Into<String>) -> ValueAny {
    ValueAny::String(value.into())
}

/// A list of strings.
pub fn strs<I: IntoIterator<Item = S>, S: Into<String>>(values: I) -> ValueAny {
    ValueAny::List(values.into_iter().map(|v| s(v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BlockSpec {
        block(
            "",
            0,
            vec![
                computed("id", Kind::Str),
                optional_computed("vm_id", Kind::Num).force_new(),
                default_str("name", ""),
            ],
            vec![
                block("memory", 1, vec![default_num("dedicated", 512)], vec![]),
                block(
                    "clone",
                    1,
                    vec![required("vm_id", Kind::Num).force_new()],
                    vec![],
                )
                .force_new(),
            ],
        )
    }

    fn obj(pairs: &[(&str, ValueAny)]) -> ValueAny {
        ValueAny::Map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn create_fills_defaults_and_unknowns() {
        let config = obj(&[
            ("memory", ValueAny::List(vec![obj(&[])])),
            ("clone", ValueAny::List(vec![])),
        ]);
        let planned = spec().plan(&config, None);
        assert_eq!(get(&planned, "id"), &ValueAny::Unknown);
        assert_eq!(get(&planned, "vm_id"), &ValueAny::Unknown);
        assert_eq!(get_str(&planned, "name"), Some(""));
        assert_eq!(get_num(&planned, "memory.0.dedicated"), Some(512));
    }

    #[test]
    fn update_keeps_computed_and_finds_force_new() {
        let prior = obj(&[
            ("id", s("100")),
            ("vm_id", ValueAny::Number(100)),
            ("name", s("a")),
            (
                "memory",
                ValueAny::List(vec![obj(&[("dedicated", ValueAny::Number(1024))])]),
            ),
            (
                "clone",
                ValueAny::List(vec![obj(&[("vm_id", ValueAny::Number(9000))])]),
            ),
        ]);
        let config = obj(&[
            ("name", s("a")),
            (
                "memory",
                ValueAny::List(vec![obj(&[("dedicated", ValueAny::Number(2048))])]),
            ),
            (
                "clone",
                ValueAny::List(vec![obj(&[("vm_id", ValueAny::Number(9001))])]),
            ),
        ]);
        let planned = spec().plan(&config, Some(&prior));
        assert_eq!(get_str(&planned, "id"), Some("100"));
        assert_eq!(get_num(&planned, "vm_id"), Some(100));
        let paths = spec().replace_paths(&prior, &planned);
        assert_eq!(
            paths,
            vec![AttributePath::new("clone").index(0).attribute("vm_id")]
        );
        let no_clone = obj(&[("clone", ValueAny::List(vec![]))]);
        let planned = spec().plan(&no_clone, Some(&prior));
        assert_eq!(
            spec().replace_paths(&prior, &planned),
            vec![AttributePath::new("clone")]
        );
    }

    #[test]
    fn set_and_get_paths() {
        let mut v = obj(&[("memory", ValueAny::List(vec![obj(&[])]))]);
        set(&mut v, "memory.0.dedicated", ValueAny::Number(4));
        assert_eq!(get_num(&v, "memory.0.dedicated"), Some(4));
        set(&mut v, "cpu.0.cores", ValueAny::Number(4));
        assert_eq!(get(&v, "cpu.0.cores"), &ValueAny::Null);
    }
}

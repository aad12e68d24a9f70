//! A labelled tree drawn as text lines, the way `tree(1)` draws directories. Pure: nodes in,
//! lines out.

/// One line of the tree and the lines below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub label: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn leaf(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            children: vec![],
        }
    }

    pub fn new(label: impl Into<String>, children: Vec<Node>) -> Self {
        Self {
            label: label.into(),
            children,
        }
    }

    /// The root's label, then every descendant indented under a branch.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![self.label.clone()];
        draw_children(&self.children, "", &mut out);
        out
    }
}

fn draw_children(children: &[Node], prefix: &str, out: &mut Vec<String>) {
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let (branch, indent) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        out.push(format!("{prefix}{branch}{}", child.label));
        draw_children(&child.children, &format!("{prefix}{indent}"), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaf_is_one_line() {
        assert_eq!(Node::leaf("x").lines(), ["x"]);
    }

    #[test]
    fn branches_continue_only_while_siblings_follow() {
        let tree = Node::new(
            "root",
            vec![
                Node::new("a", vec![Node::leaf("a1"), Node::leaf("a2")]),
                Node::new("b", vec![Node::leaf("b1")]),
            ],
        );
        assert_eq!(
            tree.lines(),
            ["root", "├─ a", "│  ├─ a1", "│  └─ a2", "└─ b", "   └─ b1",]
        );
    }
}

/// The syntax tree of a template: the subset of Jinja that chat templates use.
indirect enum TemplateNode: Sendable {
    case text(String)
    case output(TemplateExpression)
    case forLoop(targets: [String], iterable: TemplateExpression, condition: TemplateExpression?, body: [TemplateNode], elseBody: [TemplateNode])
    case conditional(branches: [(TemplateExpression, [TemplateNode])], elseBody: [TemplateNode])
    case assign(targets: [String], attribute: String?, value: TemplateExpression)
    case assignBlock(name: String, body: [TemplateNode])
    case breakLoop, continueLoop
    /// Transformers' `{% generation %}`: renders its body (it marks assistant tokens).
    case generation([TemplateNode])
}

indirect enum TemplateExpression: Sendable {
    case literal(TemplateValue)
    case name(String)
    case attribute(TemplateExpression, String)
    case item(TemplateExpression, TemplateExpression)
    case slice(TemplateExpression, TemplateExpression?, TemplateExpression?, TemplateExpression?)
    case call(TemplateExpression, [TemplateExpression], [(String, TemplateExpression)])
    case filter(TemplateExpression, String, [TemplateExpression], [(String, TemplateExpression)])
    case test(TemplateExpression, String, [TemplateExpression], negated: Bool)
    case not(TemplateExpression)
    case negate(TemplateExpression)
    case binary(String, TemplateExpression, TemplateExpression)
    case and(TemplateExpression, TemplateExpression)
    case or(TemplateExpression, TemplateExpression)
    case ternary(TemplateExpression, condition: TemplateExpression, otherwise: TemplateExpression?)
    case list([TemplateExpression])
    case dictionary([(TemplateExpression, TemplateExpression)])
}

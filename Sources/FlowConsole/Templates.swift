import Mustache

/// The console's pages as Mustache templates. `{{value}}` is HTML-escaped; only markup the
/// console made itself (a rendered page, a loss curve) goes through `{{{value}}}`.
enum Templates {
    static func library() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        for (name, text) in all { try library.register(text, named: name) }
        return library
    }

    static let all: [(String, String)] = [
        ("layout", layout), ("workflows", workflows), ("workflow-rows", workflowRows), ("workflow", workflow), ("queues", queues),
        ("dead-letters", deadLetters), ("dead-letter", deadLetter), ("replay-preview", replayPreview), ("purge-confirm", purgeConfirm),
        ("action-done", actionDone), ("schedules", schedules), ("training", training), ("training-job", trainingJob), ("costs", costs),
        ("login", login), ("problem", problem), ("query-answer", queryAnswer), ("bulk-preview", bulkPreview),
    ]

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · AntifragileFlow console</title>
        <link rel="stylesheet" href="/static/console.css">
        </head>
        <body>
        <a class="skip" href="#main">Skip to the content</a>
        <header>
        <p class="brand">AntifragileFlow</p>
        <nav aria-label="Sections"><ul>
        {{#sections}}<li><a href="{{path}}"{{#current}} aria-current="page"{{/current}}>{{name}}</a></li>{{/sections}}
        </ul></nav>
        </header>
        <main id="main" tabindex="-1">
        <h1>{{title}}</h1>
        {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
        {{{content}}}
        </main>
        <script src="/static/console.js" defer></script>
        </body>
        </html>
        """

    static let workflows = """
        <form class="filters" method="get" action="/workflows" role="search">
        <label for="q">Id contains</label><input id="q" name="q" value="{{filters.q}}" maxlength="200">
        <label for="name">Workflow</label><input id="name" name="name" value="{{filters.name}}" maxlength="200">
        <label for="where">Where</label><input id="where" name="where" value="{{filters.where}}" maxlength="500" placeholder="document_format = &quot;pdf&quot; AND pages &gt;= 10">
        <label for="status">Status</label>
        <select id="status" name="status">
        {{#statuses}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/statuses}}
        </select>
        <button type="submit" id="filter">Filter</button>
        </form>
        <p class="count" id="workflow-count">{{shown}} of {{total}} workflows{{#filtered}} matching{{/filtered}}</p>
        <table class="list" data-live="{{livePath}}">
        <caption class="visually-hidden">Workflows, newest first</caption>
        <thead><tr><th scope="col">Id</th><th scope="col">Workflow</th><th scope="col">Status</th><th scope="col">Started</th><th scope="col">Parked because</th></tr></thead>
        <tbody id="workflow-rows">{{> workflow-rows}}</tbody>
        </table>
        <nav class="pages" aria-label="Pages">{{#firstPage}}<a href="{{firstPage}}">First page</a>{{/firstPage}} {{#nextPage}}<a href="{{nextPage}}" rel="next">Next page</a>{{/nextPage}}</nav>
        {{#filters.where}}<h2>Act on the matching workflows</h2>
        <form class="operate" method="post" action="/workflows/bulk">
        <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="where" value="{{filters.where}}">
        <label for="bulk-action">Action</label><select id="bulk-action" name="action"><option value="cancel">Cancel</option><option value="signal">Send a signal</option><option value="reset">Reset to a command</option></select>
        <label for="bulk-name">Signal</label><input id="bulk-name" name="name" maxlength="200">
        <label for="bulk-input">Signal input (JSON)</label><input id="bulk-input" name="input" maxlength="500" placeholder="{}">
        <label for="bulk-position">Command</label><input id="bulk-position" name="position" type="number" min="0">
        <label for="bulk-limit">At most</label><input id="bulk-limit" name="limit" type="number" min="1" max="1000" value="100">
        <button type="submit" id="bulk-preview">Preview…</button>
        </form>{{/filters.where}}
        """

    static let workflowRows = """
        {{#workflows}}<tr><td><a href="/workflows/{{path}}">{{id}}</a></td><td>{{name}}</td><td><span class="badge {{status}}">{{status}}</span></td><td><time datetime="{{startedAt}}">{{startedAt}}</time></td><td>{{parkedReason}}</td></tr>
        {{/workflows}}{{^workflows}}<tr><td colspan="5">No workflows.</td></tr>{{/workflows}}
        """

    static let workflow = """
        <dl class="facts">
        <dt>Status</dt><dd><span class="badge {{status}}" id="workflow-status">{{status}}</span>{{#cancelRequested}} (cancel requested){{/cancelRequested}}</dd>
        <dt>Workflow</dt><dd>{{name}}</dd>
        <dt>Started</dt><dd>{{startedAt}}</dd>
        {{#finishedAt}}<dt>Finished</dt><dd>{{finishedAt}} ({{duration}})</dd>{{/finishedAt}}
        {{#parent}}<dt>Parent</dt><dd><a href="/workflows/{{path}}" id="workflow-parent">{{id}}</a></dd>{{/parent}}
        {{#hasRuns}}<dt>Runs</dt><dd><ol class="runs" id="workflow-runs">{{#runs}}<li>{{#current}}<strong>{{id}}</strong>{{/current}}{{^current}}<a href="/workflows/{{path}}">{{id}}</a>{{/current}} <span class="badge {{status}}">{{status}}</span></li>{{/runs}}</ol></dd>{{/hasRuns}}
        {{#search}}<dt>Search attributes</dt><dd id="workflow-search">{{search}}</dd>{{/search}}
        {{#memo}}<dt>Memo</dt><dd><pre class="json" id="workflow-memo">{{memo}}</pre></dd>{{/memo}}
        {{#pausedBecause}}<dt>Paused because</dt><dd id="paused-reason">{{pausedBecause}}</dd>{{/pausedBecause}}
        {{#parkedReason}}<dt>Parked because</dt><dd class="parked" id="parked-reason">{{parkedReason}}</dd>{{/parkedReason}}
        {{#error}}<dt>Error</dt><dd>{{error}}</dd>{{/error}}
        </dl>
        <div class="actions">
        {{#parked}}<form method="post" action="/workflows/{{path}}/replay"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="replay">Replay the parked message</button></form>{{/parked}}
        {{#pausable}}<form method="post" action="/workflows/{{path}}/pause"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="pause">Pause the workflow</button></form>{{/pausable}}
        {{#pausedBecause}}<form method="post" action="/workflows/{{path}}/unpause"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" id="unpause">Unpause the workflow</button></form>{{/pausedBecause}}
        {{#running}}<form method="post" action="/workflows/{{path}}/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" id="cancel">Cancel the workflow</button></form>{{/running}}
        </div>
        <h2>Input</h2><pre class="json">{{input}}</pre>
        {{#output}}<h2>Output</h2><pre class="json" id="workflow-output">{{output}}</pre>{{/output}}
        <h2>Operate</h2>
        {{#running}}<form class="operate" method="post" action="/workflows/{{path}}/signal"><input type="hidden" name="csrf" value="{{csrf}}">
        <label for="signal-name">Signal</label><input id="signal-name" name="name" required maxlength="200">
        <label for="signal-input">Input (JSON)</label><input id="signal-input" name="input" maxlength="500" placeholder="{}">
        <button type="submit" id="send-signal">Send the signal</button></form>{{/running}}
        <form class="operate" method="post" action="/workflows/{{path}}/query"><input type="hidden" name="csrf" value="{{csrf}}">
        <label for="query-name">Query</label><input id="query-name" name="name" required maxlength="200">
        <button type="submit" id="run-query">Run the query</button></form>
        {{#resettable}}<form class="operate" method="post" action="/workflows/{{path}}/reset"><input type="hidden" name="csrf" value="{{csrf}}">
        <label for="reset-position">Reset to</label><select id="reset-position" name="position">{{#commands}}<option value="{{position}}">{{position}}: {{kind}} {{name}} ({{status}})</option>{{/commands}}<option value="{{commandCount}}">{{commandCount}}: after the last command</option></select>
        <label for="reset-drop-signals">Drop the signals received after it</label><input type="checkbox" id="reset-drop-signals" name="drop_signals" value="1">
        <button type="submit" class="danger" id="reset">Reset the workflow</button></form>{{/resettable}}
        {{#hasChildren}}<h2>Child workflows</h2>
        <ul class="children" id="workflow-children">{{#children}}<li><a href="/workflows/{{path}}">{{id}}</a> {{workflow}} <span class="badge {{status}}">{{status}}</span> <span class="when">when this ends first: {{policy}}</span></li>{{/children}}</ul>{{/hasChildren}}
        <h2>Steps</h2>
        <p>Each branch is a line of steps that ran one after another; the branches ran side by side.</p>
        <ol class="timeline" aria-label="The workflow's parallel branches">
        {{#branches}}<li><span class="when">{{name}}</span><ol class="branch">{{#steps}}<li class="step {{status}}"><a href="#step-{{index}}">{{activity}}</a> <span class="badge {{status}}">{{status}}</span> <span class="when">+{{offset}}</span></li>{{/steps}}</ol></li>{{/branches}}
        </ol>
        {{#steps}}
        <section class="step-detail" id="step-{{index}}" aria-labelledby="step-{{index}}-title">
        <h3 id="step-{{index}}-title">{{activity}} <span class="badge {{status}}">{{status}}</span></h3>
        <dl class="facts"><dt>Queue</dt><dd>{{queue}}</dd><dt>Message id</dt><dd><code>{{messageID}}</code></dd><dt>Attempt</dt><dd>{{attempt}} (sent {{sends}} times)</dd>
        <dt>Scheduled</dt><dd>{{scheduledAt}}</dd>{{#took}}<dt>Took</dt><dd>{{took}}</dd>{{/took}}{{#error}}<dt>Error</dt><dd>{{error}}</dd>{{/error}}</dl>
        <details><summary>Input</summary><pre class="json">{{input}}</pre></details>
        {{#output}}<details><summary>Output</summary><pre class="json">{{output}}</pre></details>{{/output}}
        </section>
        {{/steps}}
        <h2>History</h2>
        <table class="list"><thead><tr><th scope="col">At</th><th scope="col">Event</th><th scope="col">Step</th><th scope="col">Detail</th></tr></thead><tbody>
        {{#events}}<tr><td>+{{offset}}</td><td>{{kind}}</td><td>{{stepKey}}</td><td>{{detail}}</td></tr>{{/events}}
        </tbody></table>
        """

    static let queues = """
        {{#managementProblem}}<p class="problem" role="alert">{{managementProblem}}</p>{{/managementProblem}}
        <table class="list"><caption class="visually-hidden">Queues</caption>
        <thead><tr><th scope="col">Queue</th><th scope="col">Ready</th><th scope="col">Unacknowledged</th><th scope="col">Consumers</th><th scope="col">In/s</th><th scope="col">Out/s</th></tr></thead><tbody>
        {{#queues}}<tr><td>{{name}}</td><td class="number">{{ready}}</td><td class="number">{{unacked}}</td><td class="number">{{consumers}}</td><td class="number">{{publishRate}}</td><td class="number">{{deliverRate}}</td></tr>{{/queues}}
        </tbody></table>
        <h2>Processes</h2>
        <table class="list"><thead><tr><th scope="col">Process</th><th scope="col">Address</th><th scope="col">Health</th><th scope="col">Activities run</th><th scope="col">Failed</th><th scope="col">Dead-lettered</th><th scope="col">In flight</th><th scope="col">Finished/s</th><th scope="col">Failed/s</th></tr></thead><tbody>
        {{#processes}}<tr><td>{{name}}</td><td><code>{{url}}</code></td><td><span class="badge {{healthClass}}">{{healthLabel}}</span> {{health}}</td><td class="number">{{completed}}</td><td class="number">{{failed}}</td><td class="number">{{deadLettered}}</td><td class="number">{{inFlight}}</td><td class="number">{{finishedRate}}</td><td class="number">{{failedRate}}</td></tr>{{/processes}}
        </tbody></table>
        """

    static let deadLetterFilters = """
        <form class="filters" method="get" action="/dead-letters" role="search">
        <label for="queue">Queue</label><input id="queue" name="queue" value="{{filters.queue}}" maxlength="200">
        <label for="activity">Activity</label><input id="activity" name="activity" value="{{filters.activity}}" maxlength="200">
        <label for="reason">Reason</label><input id="reason" name="reason" value="{{filters.reason}}" maxlength="200">
        <label for="error">Error contains</label><input id="error" name="error" value="{{filters.error}}" maxlength="200">
        <label for="workflow">Workflow id</label><input id="workflow" name="workflow" value="{{filters.workflow}}" maxlength="200">
        <label for="older">Older than</label><input id="older" name="older" value="{{filters.older}}" maxlength="12" placeholder="2h" size="5">
        <label for="newer">Newer than</label><input id="newer" name="newer" value="{{filters.newer}}" maxlength="12" placeholder="30m" size="5">
        <button type="submit" id="filter">Filter</button>
        </form>
        """

    static let filterFields = """
        <input type="hidden" name="csrf" value="{{csrf}}">{{#filters}}<input type="hidden" name="queue" value="{{queue}}"><input type="hidden" name="activity" value="{{activity}}"><input type="hidden" name="reason" value="{{reason}}"><input type="hidden" name="error" value="{{error}}"><input type="hidden" name="workflow" value="{{workflow}}"><input type="hidden" name="older" value="{{older}}"><input type="hidden" name="newer" value="{{newer}}"><input type="hidden" name="id" value="{{id}}">{{/filters}}
        """

    static let deadLetters = deadLetterFilters + """
        <p class="count" id="dead-letter-count">{{shown}} of {{total}} dead letters{{#filtered}} matching{{/filtered}}</p>
        <div class="actions">
        <form method="post" action="/dead-letters/replay">\(filterFields)<input type="hidden" name="dry_run" value="1"><button type="submit" id="replay-preview">Replay these {{total}}…</button></form>
        <form method="post" action="/dead-letters/purge">\(filterFields)<button type="submit" class="danger" id="purge">Purge these {{total}}…</button></form>
        </div>
        <table class="list"><thead><tr><th scope="col">Id</th><th scope="col">Dead-lettered</th><th scope="col">Queue</th><th scope="col">Activity</th><th scope="col">Reason</th><th scope="col">Error</th><th scope="col">Replays</th></tr></thead><tbody id="dead-letter-rows">
        {{#letters}}<tr><td><a href="/dead-letters/{{path}}">{{id}}</a></td><td>{{when}}</td><td>{{queue}}</td><td>{{activity}}</td><td>{{reason}}</td><td>{{error}}</td><td class="number">{{replays}}</td></tr>{{/letters}}
        {{^letters}}<tr><td colspan="7">No dead letters.</td></tr>{{/letters}}
        </tbody></table>
        <nav class="pages" aria-label="Pages">{{#previousPage}}<a href="{{previousPage}}" rel="prev">Previous page</a>{{/previousPage}} {{#nextPage}}<a href="{{nextPage}}" rel="next">Next page</a>{{/nextPage}}</nav>
        """

    static let deadLetter = """
        <dl class="facts">{{#summary}}<dt>Queue</dt><dd>{{queue}}</dd><dt>Activity</dt><dd>{{activity}}</dd><dt>Reason</dt><dd>{{reason}}</dd><dt>Error</dt><dd>{{errorType}} {{error}}</dd><dt>Attempts</dt><dd>{{attempts}}</dd><dt>Replays</dt><dd>{{replays}}</dd><dt>Workflow</dt><dd>{{workflowID}}</dd>{{/summary}}</dl>
        <div class="actions">
        <form method="post" action="/dead-letters/replay">\(filterFields)<input type="hidden" name="dry_run" value="1"><button type="submit">Replay…</button></form>
        <form method="post" action="/dead-letters/purge">\(filterFields)<button type="submit" class="danger">Purge…</button></form>
        </div>
        <h2>Headers</h2>
        <table class="list"><tbody>{{#headers}}<tr><th scope="row">{{name}}</th><td><code>{{value}}</code></td></tr>{{/headers}}</tbody></table>
        <h2>Body</h2><pre class="json" id="dead-letter-body">{{body}}</pre>
        """

    static let replayPreview = """
        <p>A dry run: nothing was sent. These {{count}} messages would go back to the queues they died in.</p>
        <ul id="replay-list">{{#replayed}}<li><code>{{id}}</code> to {{queue}}</li>{{/replayed}}</ul>
        {{#refused}}<p>Not replayed:</p><ul>{{#items}}<li><code>{{id}}</code>: {{reason}}</li>{{/items}}</ul>{{/refused}}
        <form method="post" action="/dead-letters/replay">\(filterFields)<button type="submit" id="replay-confirm">Replay {{count}} messages</button></form>
        <p><a href="/dead-letters">Back to the dead letters</a></p>
        """

    static let purgeConfirm = """
        <p class="problem" role="alert">Purging removes these {{count}} messages for good. The audit log records it.</p>
        <ul id="purge-list">{{#ids}}<li><code>{{.}}</code></li>{{/ids}}</ul>
        <form method="post" action="/dead-letters/purge">\(filterFields)<input type="hidden" name="confirm" value="yes"><button type="submit" class="danger" id="purge-confirm">Purge {{count}} messages for good</button></form>
        <p><a href="/dead-letters">Keep them</a></p>
        """

    static let actionDone = """
        <p id="action-result">{{message}}</p>
        {{#items}}<ul>{{#list}}<li>{{.}}</li>{{/list}}</ul>{{/items}}
        <p><a href="{{back}}">{{backLabel}}</a></p>
        """

    static let schedules = """
        <table class="list"><thead><tr><th scope="col">Schedule</th><th scope="col">Workflow</th><th scope="col">When</th><th scope="col">Next run</th><th scope="col">Last run</th><th scope="col">Runs</th><th scope="col">Policy</th><th scope="col">Last result</th></tr></thead><tbody>
        {{#schedules}}<tr><td>{{name}}{{#paused}} <span class="badge parked">paused</span> {{pauseNote}}{{/paused}}</td><td>{{workflow}}</td><td>{{recurrence}}</td><td>{{nextRunAt}}</td><td>{{lastRunAt}}</td><td class="number">{{runs}}</td><td>{{policy}}</td><td>{{#lastWorkflowID}}<a href="/workflows/{{lastPath}}">{{lastWorkflowID}}</a> <span class="badge {{lastStatus}}">{{lastStatus}}</span>{{/lastWorkflowID}}</td></tr>{{/schedules}}
        {{^schedules}}<tr><td colspan="8">No schedules.</td></tr>{{/schedules}}
        </tbody></table>
        """

    static let training = """
        {{#problem}}<p class="problem" role="alert">{{problem}}</p>{{/problem}}
        <table class="list"><thead><tr><th scope="col">Job</th><th scope="col">State</th><th scope="col">Step</th><th scope="col">Loss</th><th scope="col">Best</th><th scope="col">Tokens/s</th><th scope="col">Updated</th></tr></thead><tbody>
        {{#jobs}}<tr><td><a href="/training/{{path}}">{{jobID}}</a></td><td><span class="badge {{state}}">{{state}}</span></td><td class="number">{{step}}{{#maximumSteps}} / {{maximumSteps}}{{/maximumSteps}}</td><td class="number">{{loss}}</td><td class="number">{{bestLoss}}</td><td class="number">{{tokensPerSecond}}</td><td>{{updatedAt}}</td></tr>{{/jobs}}
        {{^jobs}}<tr><td colspan="7">No training jobs.</td></tr>{{/jobs}}
        </tbody></table>
        """

    static let trainingJob = """
        <dl class="facts"><dt>State</dt><dd><span class="badge {{state}}">{{state}}</span>{{#cancelRequested}} (cancel requested){{/cancelRequested}}</dd>
        <dt>Step</dt><dd>{{step}}{{#maximumSteps}} of {{maximumSteps}}{{/maximumSteps}}</dd><dt>Loss</dt><dd>{{loss}} (best {{bestLoss}})</dd>
        <dt>Base model</dt><dd>{{baseModel}}</dd><dt>Worker</dt><dd>{{workerID}}</dd><dt>Deliveries</dt><dd>{{deliveries}}</dd>{{#error}}<dt>Error</dt><dd>{{error}}</dd>{{/error}}</dl>
        {{#cancellable}}<div class="actions"><form method="post" action="/training/{{path}}/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" id="cancel-training">Cancel the job</button></form></div>{{/cancellable}}
        <h2>Loss</h2>
        <figure>{{{curve}}}<figcaption>Loss per step, as the trainer logged it.</figcaption></figure>
        <h2>Checkpoints</h2>
        <ul>{{#checkpoints}}<li><code>{{.}}</code></li>{{/checkpoints}}{{^checkpoints}}<li>None yet.</li>{{/checkpoints}}</ul>
        """

    static let costs = """
        {{#problem}}<p class="problem" role="alert">{{problem}}</p>{{/problem}}
        <dl class="facts"><dt>Spent today (UTC)</dt><dd id="spent-today">${{spentToday}}</dd><dt>Daily budget</dt><dd>{{budget}}</dd>{{#share}}<dt>Used</dt><dd><meter min="0" max="100" value="{{share}}" aria-label="Share of today's budget spent">{{share}}%</meter> {{share}}%</dd>{{/share}}</dl>
        <table class="list"><thead><tr><th scope="col">Model</th><th scope="col">Calls</th><th scope="col">Cached</th><th scope="col">Prompt tokens</th><th scope="col">Completion tokens</th><th scope="col">Dollars today</th><th scope="col">Dollars since start</th></tr></thead><tbody>
        {{#models}}<tr><td>{{model}}</td><td class="number">{{calls}}</td><td class="number">{{cached}}</td><td class="number">{{prompt}}</td><td class="number">{{completion}}</td><td class="number">{{today}}</td><td class="number">{{dollars}}</td></tr>{{/models}}
        {{^models}}<tr><td colspan="7">No calls since the OpenAI worker started.</td></tr>{{/models}}
        </tbody></table>
        <p>Per model since each OpenAI worker copy started, summed over the copies the console reads.</p>
        """

    static let login = """
        <form method="post" action="/login" class="login">
        <label for="token">Console token</label><input id="token" name="token" type="password" autocomplete="current-password" required>
        <button type="submit">Sign in</button>
        </form>
        """

    static let queryAnswer = """
        <p>The query <code>{{name}}</code> of <a href="/workflows/{{path}}">{{id}}</a> answered, from the workflow's state as it stands:</p>
        <pre class="json" id="query-answer">{{answer}}</pre>
        <p><a href="/workflows/{{path}}">Back to the workflow</a></p>
        """

    static let bulkPreview = """
        <p id="bulk-summary">A dry run: nothing was changed. {{count}} workflows would be acted on ({{verb}}):</p>
        <ul id="bulk-list">{{#workflows}}<li><a href="/workflows/{{path}}">{{id}}</a> <span class="badge {{status}}">{{status}}</span></li>{{/workflows}}</ul>
        {{#any}}<form method="post" action="/workflows/bulk"><input type="hidden" name="csrf" value="{{csrf}}">{{#fields}}<input type="hidden" name="{{name}}" value="{{value}}">{{/fields}}<input type="hidden" name="confirm" value="yes"><button type="submit" class="danger" id="bulk-confirm">{{verb}}: {{count}} workflows</button></form>{{/any}}
        <p><a href="{{back}}">Back to the list</a></p>
        """

    static let problem = """
        <p class="problem" role="alert" id="problem">{{message}}</p>
        <p><a href="{{back}}">Back</a></p>
        """
}

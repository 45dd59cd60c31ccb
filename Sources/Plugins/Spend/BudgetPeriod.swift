import Foundation

/// A budget's period: a calendar day, ISO week (from Monday) or month, in UTC.
enum BudgetPeriod: String, Sendable {
    case day, week, month

    private static let calendar: Calendar = {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// The period holding `date`: its start and the next period's start.
    func bounds(at date: Date) -> (start: Date, end: Date) {
        let calendar = Self.calendar
        let start: Date
        let component: Calendar.Component
        switch self {
        case .day:
            start = calendar.startOfDay(for: date)
            component = .day
        case .week:
            start = calendar.dateInterval(of: .weekOfYear, for: date)!.start
            component = .weekOfYear
        case .month:
            start = calendar.dateInterval(of: .month, for: date)!.start
            component = .month
        }
        return (start, calendar.date(byAdding: component, value: 1, to: start)!)
    }

    /// `monthly`, as a refusal words it.
    var adjective: String {
        switch self {
        case .day: "daily"
        case .week: "weekly"
        case .month: "monthly"
        }
    }
}

import Foundation
import NIOConcurrencyHelpers
import Testing
@testable import Kernel

@Suite struct BackgroundWorkTests {
    @Test func runReturnsOnceTheJobsLeftAtFinishHaveEnded() async {
        let work = BackgroundWork()
        let ended = NIOLockedValueBox(0)
        for _ in 0..<3 {
            work.submit {
                try? await Task.sleep(for: .milliseconds(100))
                ended.withLockedValue { $0 += 1 }
            }
        }
        work.finish()
        await work.run()
        #expect(ended.withLockedValue { $0 } == 3)
        #expect(!work.submit {}, "no job is accepted after finish")
    }

    @Test func jobsStillRunningAfterTheGraceAreCancelled() async {
        let work = BackgroundWork()
        let cancelled = NIOLockedValueBox(false)
        work.submit {
            do { try await Task.sleep(for: .seconds(600)) } catch { cancelled.withLockedValue { $0 = true } }
        }
        let started = ContinuousClock.now
        work.finish(grace: .milliseconds(100))
        await work.run()
        #expect(cancelled.withLockedValue { $0 })
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func offEventLoopJobsRunOnTheBackgroundThreadWhichEndsWithRun() async {
        let work = BackgroundWork()
        let thread = NIOLockedValueBox("")
        work.submit(offEventLoops: true) { thread.withLockedValue { $0 = currentThreadName() } }
        work.finish()
        await work.run()
        #expect(thread.withLockedValue { $0 } == "sluice-bgwork")
        #expect(!work.executor.isRunning)
    }

    @Test func stoppingAJobCancelsItAndWaitsForItsEnd() async {
        let work = BackgroundWork()
        let events = NIOLockedValueBox<[String]>([])
        await withDiscardingTaskGroup { group in
            group.addTask { await work.run() }
            let job = work.start {
                events.withLockedValue { $0.append("began") }
                do { try await Task.sleep(for: .seconds(600)) } catch { events.withLockedValue { $0.append("cancelled") } }
                try? await Task.sleep(for: .milliseconds(50))  // ends a while after the cancel
                events.withLockedValue { $0.append("ended") }
            }
            while !job.isRunning { try? await Task.sleep(for: .milliseconds(5)) }
            await job.stop()
            #expect(events.withLockedValue { $0 } == ["began", "cancelled", "ended"])
            work.finish()
        }
    }

    @Test func aJobStoppedBeforeItBeganNeverBegins() async {
        let work = BackgroundWork()
        let job = work.start { Issue.record("a stopped job began") }
        await job.stop()  // returns at once: nothing runs the work yet
        work.finish()
        await work.run()
        #expect(!job.isRunning)
    }

    @Test func cancellingTheRunnerCancelsItsJobs() async {
        let work = BackgroundWork()
        let cancelled = NIOLockedValueBox(false)
        let runner = Task { await work.run() }
        let job = work.start {
            do { try await Task.sleep(for: .seconds(600)) } catch { cancelled.withLockedValue { $0 = true } }
        }
        while !job.isRunning { try? await Task.sleep(for: .milliseconds(5)) }
        runner.cancel()
        await runner.value
        #expect(cancelled.withLockedValue { $0 })
        #expect(!job.isRunning)
    }
}
